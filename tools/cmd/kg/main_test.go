package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

func TestKeysNew(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, runKeys([]string{"new", "--id", "ci", "--role", "write", "--namespaces", "a, b"}, &out, &errOut))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 4, out.String())
	secret := strings.TrimSpace(lines[1])
	require.True(t, strings.HasPrefix(secret, "kg_"))
	keys, err := ingestapi.ParseAPIKeys([]byte("[" + strings.TrimSpace(lines[3]) + "]"))
	require.NoError(t, err)
	require.Equal(t, ingestapi.HashAPIKey(secret), keys[0].SHA256, "the entry holds the secret's hash")
	require.NotContains(t, lines[3], secret, "the entry never holds the secret")
	require.Equal(t, []string{"a", "b"}, keys[0].Namespaces)
	require.Equal(t, "ci", keys[0].ClientID)
	cfg := ingestapi.AuthConfig{Keys: keys}
	require.NoError(t, cfg.Validate())

	out.Reset()
	require.NoError(t, runKeys([]string{"new", "--id", "ci2", "--role", "read", "--namespaces", "*"}, &out, &errOut))
	require.NotContains(t, out.String(), secret, "every key is new")
	require.Error(t, runKeys([]string{"new", "--id", "x", "--role", "owner", "--namespaces", "a"}, &out, &errOut))
	require.Error(t, runKeys([]string{"new", "--id", "x", "--role", "read"}, &out, &errOut), "a key needs namespaces")
	require.Error(t, runKeys(nil, &out, &errOut))
}

func TestMemoryLimit(t *testing.T) {
	tests := []struct {
		flag, gomemlimit string
		want             int64
		wantErr          bool
	}{
		{flag: "256MiB", want: 256 << 20},
		{flag: "1GiB", want: 1 << 30},
		{flag: " 512 MiB ", want: 512 << 20},
		{flag: "off", want: math.MaxInt64},
		{flag: "0", want: math.MaxInt64},
		{flag: "256MiB", gomemlimit: "1GiB", want: -1}, // the runtime applied GOMEMLIMIT
		{flag: "lots", wantErr: true},
		{flag: "1MiB", wantErr: true},
		{flag: "-5MiB", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.flag+"/"+tc.gomemlimit, func(t *testing.T) {
			got, err := memoryLimit(tc.flag, tc.gomemlimit)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
