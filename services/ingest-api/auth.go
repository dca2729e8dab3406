package ingestapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/kgraph-dev/kgraph/libs/ratelimit"
)

// Role is what an API key may do. Each role includes the ones before it:
// read < write < admin.
type Role string

// Roles.
const (
	RoleRead  Role = "read"
	RoleWrite Role = "write"
	RoleAdmin Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Includes reports whether a key of role r may do what needs role need.
func (r Role) Includes(need Role) bool { return r.rank() >= need.rank() && need.rank() > 0 }

// AllNamespaces in an API key's namespaces grants every namespace.
const AllNamespaces = "*"

// APIKey is one configured key. Only the SHA-256 of the secret is kept: the
// configuration never holds a usable key.
type APIKey struct {
	// ID names the key in logs, metrics and rate limits (never the secret).
	ID string `json:"id"`
	// SHA256 is the hex SHA-256 of the secret (`kg keys new` prints it).
	SHA256     string   `json:"sha256"`
	ClientID   string   `json:"client_id"`
	Namespaces []string `json:"namespaces"`
	Role       Role     `json:"role"`
	// RateLimit is requests per minute; 0 takes AuthConfig.DefaultRateLimit,
	// a negative value means unlimited.
	RateLimit int `json:"rate_limit_per_minute,omitempty"`

	hash [sha256.Size]byte
}

// AuthConfig configures API keys and rate limits.
type AuthConfig struct {
	// Disabled turns authentication off: every request acts as an admin of
	// every namespace. Only for a laptop, and only when asked for.
	Disabled bool
	Keys     []APIKey
	// DefaultRateLimit is requests per minute per key (0: unlimited).
	DefaultRateLimit int
}

// ParseAPIKeys reads the JSON array of keys from KG_API_KEYS (or its file)
// and validates it.
func ParseAPIKeys(data []byte) ([]APIKey, error) {
	var keys []APIKey
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&keys); err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	return keys, nil
}

// HashAPIKey returns the hex SHA-256 of a secret, the form keys are
// configured in.
func HashAPIKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Validate checks the configuration and prepares the keys.
func (c *AuthConfig) Validate() error {
	if c.Disabled {
		return nil
	}
	if len(c.Keys) == 0 {
		return errors.New("authentication is on but no API key is configured: set KG_API_KEYS (or KG_API_KEYS_FILE), or switch authentication off explicitly for a laptop (KG_AUTH_DISABLED=true, kg serve --no-auth)")
	}
	ids := map[string]bool{}
	for i := range c.Keys {
		k := &c.Keys[i]
		where := fmt.Sprintf("api key %d (%q)", i, k.ID)
		if k.ID == "" || !validName(k.ID) {
			return fmt.Errorf("%s: id must be letters, digits, '_' or '-'", where)
		}
		if ids[k.ID] {
			return fmt.Errorf("%s: duplicate id", where)
		}
		ids[k.ID] = true
		raw, err := hex.DecodeString(k.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return fmt.Errorf("%s: sha256 must be 64 hex characters (the SHA-256 of the secret, never the secret)", where)
		}
		copy(k.hash[:], raw)
		if k.Role.rank() == 0 {
			return fmt.Errorf("%s: role must be read, write or admin", where)
		}
		if len(k.Namespaces) == 0 {
			return fmt.Errorf("%s: namespaces must list at least one namespace (or %q)", where, AllNamespaces)
		}
		for _, ns := range k.Namespaces {
			if ns != AllNamespaces && !validName(ns) {
				return fmt.Errorf("%s: namespace %q is invalid", where, ns)
			}
		}
		if k.ClientID == "" {
			k.ClientID = k.ID
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && (c == '_' || c == '-'))) {
			return false
		}
	}
	return true
}

// Principal is who a request acts for.
type Principal struct {
	KeyID    string
	ClientID string
	Role     Role
	// Namespaces the key may touch; nil with All set grants every one.
	Namespaces []string
	All        bool
	// Anonymous is set when authentication is off.
	Anonymous bool
}

// Can reports whether the principal may touch namespace ns.
func (p Principal) Can(ns string) bool { return p.All || slices.Contains(p.Namespaces, ns) }

type principalKey struct{}

// principalSlot carries the principal back out to the access log, which
// runs outside authenticate.
type principalSlot struct{ p Principal }

type principalSlotKey struct{}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	if slot, ok := ctx.Value(principalSlotKey{}).(*principalSlot); ok {
		slot.p = p
	}
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the request's principal (zero when none).
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

func (s *Server) principal(ctx context.Context) Principal {
	p, _ := PrincipalFrom(ctx)
	return p
}

// requireDeclaredRole enforces the role an operation declares (withRole)
// before its handler runs: the OpenAPI document's x-kgraph-role is the
// enforcement, not a description of it, and a handler checks only the
// namespace it touches (allowNamespace). Public operations (the probes)
// declare "public" (withPublic); one that declares nothing is refused, so a
// forgotten declaration fails closed.
func (s *Server) requireDeclaredRole(ctx huma.Context, next func(huma.Context)) {
	role, _ := ctx.Operation().Metadata["role"].(string)
	switch role {
	case rolePublic:
		next(ctx)
		return
	case "":
		_ = huma.WriteErr(s.api, ctx, http.StatusForbidden, "this operation declares no role")
		return
	}
	if se := s.allowAny(ctx.Context(), Role(role)); se != nil {
		_ = huma.WriteErr(s.api, ctx, se.GetStatus(), se.Error()) // a write error is the client's
		return
	}
	next(ctx)
}

// allowNamespace checks that the request's key may touch namespace ns (the
// role was checked by requireDeclaredRole): 401 without a principal, 403
// otherwise.
func (s *Server) allowNamespace(ctx context.Context, ns string) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return huma.Error401Unauthorized("an API key is required")
	}
	if !p.Can(ns) {
		return huma.Error403Forbidden(fmt.Sprintf("this API key may not access namespace %q", ns))
	}
	return nil
}

// allowAny checks the role only.
func (s *Server) allowAny(ctx context.Context, need Role) huma.StatusError {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return huma.Error401Unauthorized("an API key is required")
	}
	if !p.Role.Includes(need) {
		return huma.Error403Forbidden(fmt.Sprintf("this API key has role %q; %q is required", p.Role, need))
	}
	return nil
}

// canSee reports whether an object of namespace ns exists for the request:
// objects of other namespaces answer 404, so ids do not leak across tenants.
func (s *Server) canSee(ctx context.Context, ns string) bool { return s.principal(ctx).Can(ns) }

// clientID is what a job records as its client: the X-Client-ID header when
// sent, else the key's client id.
func clientID(ctx context.Context, header string) string {
	if header != "" {
		return header
	}
	p, _ := PrincipalFrom(ctx)
	return p.ClientID
}

// publicPaths need no key: probes and the API description.
var publicPaths = []string{"/api/v1/health/live", "/api/v1/health/ready", "/openapi.json", "/openapi.yaml", "/docs", "/schemas/"}

func isPublic(path string) bool {
	for _, p := range publicPaths {
		if path == p || strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) {
			return true
		}
	}
	return strings.HasPrefix(path, "/openapi")
}

// authenticate resolves the API key into a Principal and applies the key's
// rate limit. The secret is compared as a SHA-256 hash against every key in
// constant time, so neither a match nor its position leaks through timing.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || isPublic(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if s.cfg.Auth.Disabled {
			p := Principal{KeyID: "anonymous", ClientID: "anonymous", Role: RoleAdmin, All: true, Anonymous: true}
			next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
			return
		}
		secret := r.Header.Get("X-API-Key")
		if secret == "" {
			if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
				secret = strings.TrimSpace(h[7:])
			}
		}
		if secret == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kgraph"`)
			writeProblem(w, http.StatusUnauthorized, "an API key is required (X-API-Key or Authorization: Bearer)")
			return
		}
		key := s.matchKey(secret)
		if key == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kgraph", error="invalid_token"`)
			writeProblem(w, http.StatusUnauthorized, "the API key is not valid")
			return
		}
		if !s.rateLimited(w, r, key) {
			return
		}
		p := Principal{KeyID: key.ID, ClientID: key.ClientID, Role: key.Role, Namespaces: key.Namespaces, All: slices.Contains(key.Namespaces, AllNamespaces)}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}

func (s *Server) matchKey(secret string) *APIKey {
	sum := sha256.Sum256([]byte(secret))
	var found *APIKey
	for i := range s.cfg.Auth.Keys {
		k := &s.cfg.Auth.Keys[i]
		if subtle.ConstantTimeCompare(sum[:], k.hash[:]) == 1 {
			found = k
		}
	}
	return found
}

// rateLimited applies the key's limit and reports whether the request may
// go on; when not, it has answered 429 with Retry-After. A limiter that
// fails lets the request through: an outage of the counters' store must not
// take the API down with it.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, key *APIKey) bool {
	perMinute := key.RateLimit
	if perMinute == 0 {
		perMinute = s.cfg.Auth.DefaultRateLimit
	}
	if perMinute <= 0 || s.deps.Limiter == nil {
		return true
	}
	d, err := s.deps.Limiter.Allow(r.Context(), "key:"+key.ID, ratelimit.Limit{Requests: perMinute, Per: time.Minute})
	if err != nil {
		s.deps.Logger.WarnContext(r.Context(), "rate limiter unavailable; request let through", "err", err, "key_id", key.ID)
		return true
	}
	limit := ratelimit.Limit{Requests: perMinute, Per: time.Minute}
	ratelimit.SetHeaders(w.Header(), limit, d)
	if d.Allowed {
		return true
	}
	secs := int(math.Ceil(d.RetryAfter.Seconds()))
	writeProblem(w, http.StatusTooManyRequests, fmt.Sprintf("rate limit of %d requests per minute exceeded; retry in %d s", perMinute, max(secs, 1)))
	return false
}
