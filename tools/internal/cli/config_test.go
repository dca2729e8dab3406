package cli_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// seenRequest is what a fake edge saw of the last request.
type seenRequest struct {
	server, key, namespace string
	keySent                bool
}

func TestConfigPrecedence(t *testing.T) {
	var mu sync.Mutex
	var last seenRequest
	fake := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			last = seenRequest{server: name, key: r.Header.Get("X-API-Key"), keySent: r.Header.Values("X-API-Key") != nil,
				namespace: r.URL.Query().Get("namespace")}
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jobs":[]}`)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	flagURL, envURL, fileURL, xdgURL, homeURL := fake("flag"), fake("env"), fake("file"), fake("xdg"), fake("home")
	dir := t.TempDir()
	config := func(path, server, name string) string {
		writeFile(t, path, `{"server": "`+server+`", "api_key": "`+name+`-key", "namespace": "`+name+`-ns"}`)
		require.NoError(t, os.Chmod(path, 0o600))
		return path
	}
	file := config(filepath.Join(dir, "explicit.json"), fileURL, "file")
	config(filepath.Join(dir, "xdg", "kg", "config.json"), xdgURL, "xdg")
	config(filepath.Join(dir, "home", ".config", "kg", "config.json"), homeURL, "home")
	everyEnv := map[string]string{"KG_CONFIG": file, "KG_SERVER": envURL, "KG_API_KEY": "env-key", "KG_NAMESPACE": "env-ns"}

	cases := []struct {
		name string
		env  map[string]string
		args []string
		want seenRequest
	}{
		{"KG_CONFIG names the file", map[string]string{"KG_CONFIG": file}, nil, seenRequest{"file", "file-key", "file-ns", true}},
		{"--config names the file", nil, []string{"--config", file}, seenRequest{"file", "file-key", "file-ns", true}},
		{"the environment beats the file", everyEnv, nil, seenRequest{"env", "env-key", "env-ns", true}},
		{"flags beat the environment", everyEnv, []string{"--server", flagURL, "--api-key", "flag-key", "--namespace", "flag-ns"},
			seenRequest{"flag", "flag-key", "flag-ns", true}},
		{"each setting on its own", map[string]string{"KG_CONFIG": file, "KG_API_KEY": "env-key"}, []string{"--namespace", "flag-ns"},
			seenRequest{"file", "env-key", "flag-ns", true}},
		{"an empty --api-key sends none", map[string]string{"KG_CONFIG": file, "KG_API_KEY": "env-key"}, []string{"--api-key", ""},
			seenRequest{"file", "", "file-ns", false}},
		{"XDG_CONFIG_HOME by default", map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "xdg"), "HOME": filepath.Join(dir, "home")}, nil,
			seenRequest{"xdg", "xdg-key", "xdg-ns", true}},
		{"~/.config without XDG_CONFIG_HOME", map[string]string{"HOME": filepath.Join(dir, "home")}, nil,
			seenRequest{"home", "home-key", "home-ns", true}},
		{"a relative XDG_CONFIG_HOME is ignored", map[string]string{"XDG_CONFIG_HOME": "xdg", "HOME": filepath.Join(dir, "home")}, nil,
			seenRequest{"home", "home-key", "home-ns", true}},
		{"no default file is no config", map[string]string{"HOME": filepath.Join(dir, "nobody"), "KG_SERVER": envURL}, nil,
			seenRequest{"env", "", "", false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := kg{t: t, env: c.env}.run("", append([]string{"jobs", "list"}, c.args...)...)
			require.NoError(t, r.err, r.stderr)
			require.Equal(t, "no jobs\n", r.stdout)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, c.want, last)
		})
	}

	t.Run("a named file must exist", func(t *testing.T) {
		r := kg{t: t, env: map[string]string{"KG_CONFIG": filepath.Join(dir, "missing.json")}}.run("", "jobs", "list")
		require.ErrorContains(t, r.err, "config file: open "+filepath.Join(dir, "missing.json"))
	})
	t.Run("unknown fields are refused", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		writeFile(t, bad, `{"server": "`+fileURL+`", "api-key": "x"}`)
		r := kg{t: t}.run("", "jobs", "list", "--config", bad)
		require.ErrorContains(t, r.err, `config file `+bad+`: json: unknown field "api-key"`)
	})
	t.Run("a bad server says where it came from", func(t *testing.T) {
		bad := filepath.Join(dir, "badserver.json")
		writeFile(t, bad, `{"server": "localhost:8080"}`)
		r := kg{t: t}.run("", "jobs", "list", "--config", bad)
		require.EqualError(t, r.err, `server "localhost:8080" (config `+bad+`): want an http:// or https:// URL`)
	})
	t.Run("a key others may read draws a warning", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("file modes do not say who may read a file on Windows")
		}
		open := filepath.Join(dir, "open.json")
		writeFile(t, open, `{"server": "`+fileURL+`", "api_key": "k"}`)
		require.NoError(t, os.Chmod(open, 0o644))
		r := kg{t: t}.run("", "jobs", "list", "--config", open)
		require.NoError(t, r.err)
		require.Equal(t, "kg: warning: "+open+" holds an API key and other users may read it; chmod 600 "+open+"\n", r.stderr)
	})
}
