package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// settings say where kg connects, as whom, and in which namespace; the
// config file holds them in this form.
type settings struct {
	Server    string `json:"server,omitempty"`
	APIKey    string `json:"api_key,omitempty"`
	Namespace string `json:"namespace,omitempty"`

	// serverFrom says where Server came from, for messages.
	serverFrom string
}

// configPath is the config file to read: --config, else $KG_CONFIG (both
// explicit: the file must exist), else the XDG default (read when present).
func (e *environment) configPath(g *globals) (path string, explicit bool) {
	if g.configFlag.set {
		return g.configFlag.value, true
	}
	if p := e.getenv("KG_CONFIG"); p != "" {
		return p, true
	}
	if dir := e.getenv("XDG_CONFIG_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "kg", "config.json"), false
	}
	if home := e.getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "kg", "config.json"), false
	}
	return "", false
}

// loadConfig reads a config file. A default file that does not exist is
// no config; one named explicitly must exist. Unknown fields are errors:
// a misspelt "api-key" would otherwise be silently ignored.
func (e *environment) loadConfig(path string, explicit bool) (settings, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return settings{}, nil
	}
	if err != nil {
		return settings{}, fmt.Errorf("config file: %w", err)
	}
	var s settings
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return settings{}, fmt.Errorf("config file %s: %w (want {\"server\": …, \"api_key\": …, \"namespace\": …})", path, err)
	}
	if s.APIKey != "" && runtime.GOOS != "windows" {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(e.stderr, "kg: warning: %s holds an API key and other users may read it; chmod 600 %s\n", path, path)
		}
	}
	return s, nil
}

// resolve works out server, key and namespace: the flag, else the
// environment, else the config file, else the default.
func (e *environment) resolve(g *globals) (settings, error) {
	var file settings
	path, explicit := e.configPath(g)
	if path != "" {
		var err error
		if file, err = e.loadConfig(path, explicit); err != nil {
			return settings{}, err
		}
	}
	pick := func(flag optionalString, flagName, envName, fromFile, def string) (string, string) {
		switch {
		case flag.set:
			return flag.value, "flag --" + flagName
		case e.getenv(envName) != "":
			return e.getenv(envName), "env " + envName
		case fromFile != "":
			return fromFile, "config " + path
		}
		return def, "default"
	}
	var out settings
	out.Server, out.serverFrom = pick(g.serverFlag, "server", "KG_SERVER", file.Server, DefaultServer)
	out.APIKey, _ = pick(g.apiKeyFlag, "api-key", "KG_API_KEY", file.APIKey, "")
	if g.withNamespace {
		out.Namespace, _ = pick(g.namespaceFlag, "namespace", "KG_NAMESPACE", file.Namespace, "")
	}
	return out, nil
}
