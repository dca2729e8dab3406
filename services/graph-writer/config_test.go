package graphwriter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/envconf"
	graphwriter "github.com/kgraph-dev/kgraph/services/graph-writer"
)

func TestReadConfig(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		quiet   time.Duration
		stale   time.Duration
		wantErr string
	}{
		{"defaults", nil, graphwriter.DefaultQuietPeriod, graphwriter.DefaultMaxStaleness, ""},
		{"set", map[string]string{"KG_COMMUNITY_QUIET": "2s", "KG_COMMUNITY_MAX_STALENESS": "1m"}, 2 * time.Second, time.Minute, ""},
		{"rebuild after every job", map[string]string{"KG_COMMUNITY_QUIET": "0s"}, 0, graphwriter.DefaultMaxStaleness, ""},
		{"negative quiet", map[string]string{"KG_COMMUNITY_QUIET": "-1s"}, 0, 0, "KG_COMMUNITY_QUIET"},
		{"staleness under quiet", map[string]string{"KG_COMMUNITY_QUIET": "1m", "KG_COMMUNITY_MAX_STALENESS": "10s"}, 0, 0, "KG_COMMUNITY_MAX_STALENESS"},
		{"staleness past the build timeout", map[string]string{"KG_COMMUNITY_MAX_STALENESS": "1h"}, 0, 0, "KG_COMMUNITY_MAX_STALENESS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := graphwriter.ReadConfig(envconf.New(func(k string) string { return c.env[k] }))
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.quiet, cfg.QuietPeriod)
			require.Equal(t, c.stale, cfg.MaxStaleness)
		})
	}
}
