package ingestapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"
)

// The role an operation declares is what is enforced, before its handler
// runs; an operation that declares none is refused.
func TestDeclaredRoleIsEnforced(t *testing.T) {
	keys := []APIKey{
		{ID: "reader", SHA256: HashAPIKey("reader-secret"), Namespaces: []string{AllNamespaces}, Role: RoleRead},
		{ID: "writer", SHA256: HashAPIKey("writer-secret"), Namespaces: []string{AllNamespaces}, Role: RoleWrite},
	}
	cfg := Config{Auth: AuthConfig{Keys: keys}}
	require.NoError(t, cfg.Validate())
	s := New(cfg, Deps{})
	ran := map[string]int{}
	register := func(op huma.Operation) {
		huma.Register(s.api, op, func(context.Context, *struct{}) (*struct{}, error) {
			ran[op.OperationID]++
			return nil, nil
		})
	}
	register(withRole(huma.Operation{OperationID: "test-write", Method: http.MethodPost, Path: "/api/v1/test/write"}, RoleWrite))
	register(huma.Operation{OperationID: "test-undeclared", Method: http.MethodGet, Path: "/api/v1/test/undeclared"})

	call := func(method, path, key string) int {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("X-API-Key", key)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusForbidden, call(http.MethodPost, "/api/v1/test/write", "reader-secret"))
	require.Zero(t, ran["test-write"], "the handler does not run for a key without the role")
	require.Equal(t, http.StatusNoContent, call(http.MethodPost, "/api/v1/test/write", "writer-secret"))
	require.Equal(t, 1, ran["test-write"])
	require.Equal(t, http.StatusForbidden, call(http.MethodGet, "/api/v1/test/undeclared", "writer-secret"))
	require.Zero(t, ran["test-undeclared"], "an operation without a declared role never runs")
}
