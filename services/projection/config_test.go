package projection_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/services/projection"
)

func TestReadConfig(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    projection.Config
		wantErr string
	}{
		{name: "defaults", want: projection.Config{Concurrency: 8, SchedulerInterval: time.Minute, ApprovalTTL: 24 * time.Hour,
			Retention: 7 * 24 * time.Hour}},
		{name: "set", env: map[string]string{"KG_SCHEDULER_INTERVAL": "30s", "KG_APPROVAL_TTL": "2h", "KG_JOB_RETENTION": "720h"},
			want: projection.Config{Concurrency: 8, SchedulerInterval: 30 * time.Second, ApprovalTTL: 2 * time.Hour, Retention: 720 * time.Hour}},
		{name: "retention 0 keeps forever", env: map[string]string{"KG_JOB_RETENTION": "0"},
			want: projection.Config{Concurrency: 8, SchedulerInterval: time.Minute, ApprovalTTL: 24 * time.Hour, Retention: projection.RetainForever}},
		{name: "interval too short", env: map[string]string{"KG_SCHEDULER_INTERVAL": "10ms"}, wantErr: "KG_SCHEDULER_INTERVAL"},
		{name: "approval TTL zero", env: map[string]string{"KG_APPROVAL_TTL": "0s"}, wantErr: "KG_APPROVAL_TTL"},
		{name: "negative retention", env: map[string]string{"KG_JOB_RETENTION": "-1h"}, wantErr: "KG_JOB_RETENTION"},
		{name: "not a duration", env: map[string]string{"KG_APPROVAL_TTL": "a day"}, wantErr: "KG_APPROVAL_TTL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := envconf.New(func(name string) string { return c.env[name] })
			cfg, err := projection.ReadConfig(env)
			if err == nil {
				err = env.Err()
			}
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, cfg)
		})
	}
}
