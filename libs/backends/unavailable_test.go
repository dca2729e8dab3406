package backends

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIsUnavailable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"refused", fmt.Errorf("merge chunk: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"sqlite busy", errors.New("database is locked (5) (SQLITE_BUSY)"), true},
		{"bad data", errors.New("chunk id is empty"), false},
		{"schema", errors.New("constraint violation"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { require.Equal(t, c.want, IsUnavailable(c.err)) })
	}
}

func TestValidateNamesMissingSettings(t *testing.T) {
	err := Config{Graph: Neo4j, Vector: Qdrant, KV: Redis}.Validate()
	require.ErrorContains(t, err, "NEO4J_URI")
	require.ErrorContains(t, err, "QDRANT_URL")
	require.ErrorContains(t, err, "REDIS_URL")
	err = Config{Graph: "postgres", Vector: Embedded, KV: Embedded}.Validate()
	require.ErrorContains(t, err, "KG_GRAPH_STORE")
	require.NoError(t, Config{Graph: Embedded, Vector: Embedded, KV: Embedded}.Validate())
}
