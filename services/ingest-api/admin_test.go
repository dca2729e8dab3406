package ingestapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

// adminKeys are the test's API keys: id → role and namespaces.
var adminKeys = []struct {
	id    string
	role  ingestapi.Role
	space []string
}{
	{"root", ingestapi.RoleAdmin, []string{ingestapi.AllNamespaces}},
	{"alpha-admin", ingestapi.RoleAdmin, []string{"alpha"}},
	{"reader", ingestapi.RoleRead, []string{ingestapi.AllNamespaces}},
	{"alpha-writer", ingestapi.RoleWrite, []string{"alpha"}},
}

func adminSecret(id string) string { return "secret-of-" + id }

// newAdminEdge builds the edge with authentication on and the test keys.
func newAdminEdge(t *testing.T, deps ingestapi.Deps, tune func(*ingestapi.Config)) http.Handler {
	t.Helper()
	cfg := ingestapi.Config{ApprovalNamespaces: []string{"alpha", "beta"}}
	cfg.Info = ingestapi.ServiceInfo{Version: "1.2.3", Mode: "services", GraphStore: "neo4j", Extractor: "offline"}
	for _, k := range adminKeys {
		cfg.Auth.Keys = append(cfg.Auth.Keys, ingestapi.APIKey{ID: k.id, SHA256: ingestapi.HashAPIKey(adminSecret(k.id)), Role: k.role, Namespaces: k.space})
	}
	if tune != nil {
		tune(&cfg)
	}
	require.NoError(t, cfg.Validate())
	return ingestapi.New(cfg, deps).Handler()
}

type adminReply struct {
	status int
	body   []byte
}

func (r adminReply) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), string(r.body))
}

// adminCall makes a request with the key of id ("" for none).
func adminCall(t *testing.T, h http.Handler, method, path, id, body string) adminReply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if id != "" {
		req.Header.Set("X-API-Key", adminSecret(id))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 400 {
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), "%s %s: %s", method, path, rec.Body)
	}
	return adminReply{status: rec.Code, body: rec.Body.Bytes()}
}

// adminBus is an embedded JetStream with kgraph's topology.
type adminBus struct {
	js    jetstream.JetStream
	nc    *nats.Conn
	srv   *natsembed.Server
	store *bus.DeadLetterStore
}

func newAdminBus(t *testing.T) adminBus {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect("edge")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	set := bus.DefaultSettings()
	set.Storage = jetstream.MemoryStorage
	require.NoError(t, bus.EnsureTopology(context.Background(), js, set))
	return adminBus{js: js, nc: nc, srv: srv, store: bus.NewDeadLetterStore(js)}
}

// deadLetter writes a dead letter as the consumer adapter does and returns
// its seq; ns "" writes a payload that names no namespace.
func (b adminBus) deadLetter(t *testing.T, consumer, ns, jobID string) uint64 {
	t.Helper()
	subject, err := events.SubjectOf(events.TypeDocumentSubmitted)
	require.NoError(t, err)
	m := nats.NewMsg(events.DeadLetterSubject(consumer))
	m.Header.Set(events.HeaderSpec, "1.0")
	m.Header.Set(events.HeaderID, "evt-"+jobID)
	m.Header.Set(events.HeaderSource, "test")
	m.Header.Set(events.HeaderType, string(events.TypeDocumentSubmitted))
	m.Header.Set(bus.HeaderDLQConsumer, consumer)
	m.Header.Set(bus.HeaderDLQSubject, subject)
	m.Header.Set(bus.HeaderDLQReason, "boom for "+jobID)
	m.Header.Set(bus.HeaderDLQStreamSeq, "7")
	m.Header.Set(bus.HeaderDLQDeliveries, "3")
	m.Data = []byte(fmt.Sprintf(`{"job_id":%q,"doc_id":"d1","namespace":%q,"content":"text"}`, jobID, ns))
	if ns == "" {
		m.Data = []byte(`not an event`)
	}
	ack, err := b.js.PublishMsg(context.Background(), m)
	require.NoError(t, err)
	return ack.Sequence
}

func TestAdminRoutesNeedAnAdminKey(t *testing.T) {
	b := newAdminBus(t)
	seq := b.deadLetter(t, bus.ConsumerDedup, "alpha", "j1")
	h := newAdminEdge(t, ingestapi.Deps{DeadLetters: b.store, Query: b.nc}, nil)
	dl := "/api/v1/admin/dead-letters/" + strconv.FormatUint(seq, 10)
	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/admin/dead-letters", ""},
		{http.MethodGet, dl, ""},
		{http.MethodPost, dl + "/replay", ""},
		{http.MethodGet, "/api/v1/admin/scheduler/status", ""},
		{http.MethodPost, "/api/v1/admin/scheduler/cleanup", `{"dry_run":true}`},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			require.Equal(t, http.StatusUnauthorized, adminCall(t, h, r.method, r.path, "", r.body).status)
			require.Equal(t, http.StatusForbidden, adminCall(t, h, r.method, r.path, "reader", r.body).status)
			require.Equal(t, http.StatusForbidden, adminCall(t, h, r.method, r.path, "alpha-writer", r.body).status)
		})
	}
	_, err := b.store.Get(context.Background(), seq)
	require.NoError(t, err, "a refused replay replays nothing")
	require.Equal(t, http.StatusUnauthorized, adminCall(t, h, http.MethodGet, "/api/v1/info", "", "").status)
}

func TestInfo(t *testing.T) {
	h := newAdminEdge(t, ingestapi.Deps{}, func(c *ingestapi.Config) { c.Auth.DefaultRateLimit = 600 })
	r := adminCall(t, h, http.MethodGet, "/api/v1/info", "reader", "")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var info ingestapi.InfoReply
	r.decode(t, &info)
	require.Equal(t, "1.2.3", info.Version)
	require.Equal(t, "services", info.Mode)
	require.Equal(t, "neo4j", info.GraphStore)
	require.Equal(t, runtime.Version(), info.GoVersion)
	require.GreaterOrEqual(t, info.UptimeSeconds, 0.0)
	require.WithinDuration(t, time.Now(), info.StartedAt, time.Minute)
	require.Equal(t, ingestapi.AuthInfo{Enabled: true, Keys: len(adminKeys), DefaultRateLimit: 600}, info.Auth)
	require.Equal(t, []string{"alpha", "beta"}, info.ApprovalNamespaces)
	require.Equal(t, ingestapi.CallerInfo{KeyID: "reader", ClientID: "reader", Role: "read", Namespaces: []string{"*"}}, info.Caller)
	for _, k := range adminKeys {
		require.NotContains(t, string(r.body), ingestapi.HashAPIKey(adminSecret(k.id)), "no key hash is shown")
		require.NotContains(t, string(r.body), adminSecret(k.id))
	}
	var flat map[string]any
	r.decode(t, &flat)
	require.Equal(t, "1.2.3", flat["version"], "the deployment's fields are at the top level")

	r = adminCall(t, h, http.MethodGet, "/api/v1/info", "alpha-writer", "")
	require.Equal(t, http.StatusOK, r.status)
	r.decode(t, &info)
	require.Equal(t, []string{"alpha"}, info.ApprovalNamespaces, "other namespaces' names are not shown")
	require.Equal(t, ingestapi.CallerInfo{KeyID: "alpha-writer", ClientID: "alpha-writer", Role: "write", Namespaces: []string{"alpha"}}, info.Caller)
}

func TestInfoWithoutAuthentication(t *testing.T) {
	h := newAdminEdge(t, ingestapi.Deps{}, func(c *ingestapi.Config) { c.Auth = ingestapi.AuthConfig{Disabled: true} })
	r := adminCall(t, h, http.MethodGet, "/api/v1/info", "", "")
	require.Equal(t, http.StatusOK, r.status)
	var info ingestapi.InfoReply
	r.decode(t, &info)
	require.False(t, info.Auth.Enabled)
	require.Zero(t, info.Auth.Keys)
	require.Equal(t, "admin", info.Caller.Role)
	require.Equal(t, []string{"*"}, info.Caller.Namespaces)
}

func deadLetterJobs(t *testing.T, r adminReply) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var page ingestapi.DeadLetterList
	r.decode(t, &page)
	out := []string{}
	for _, d := range page.DeadLetters {
		out = append(out, d.JobID+"@"+d.Namespace)
	}
	return out
}

func TestDeadLetterVisibilityFollowsNamespaces(t *testing.T) {
	b := newAdminBus(t)
	alpha := b.deadLetter(t, bus.ConsumerDedup, "alpha", "ja")
	beta := b.deadLetter(t, bus.ConsumerGraphWriter, "beta", "jb")
	orphan := b.deadLetter(t, bus.ConsumerProjection, "", "jx")
	h := newAdminEdge(t, ingestapi.Deps{DeadLetters: b.store}, nil)
	list := "/api/v1/admin/dead-letters"

	require.Equal(t, []string{"ja@alpha", "jb@beta", "@"}, deadLetterJobs(t, adminCall(t, h, http.MethodGet, list, "root", "")))
	require.Equal(t, []string{"ja@alpha"}, deadLetterJobs(t, adminCall(t, h, http.MethodGet, list, "alpha-admin", "")),
		"a namespace-limited admin sees neither other namespaces nor dead letters without one")
	require.Equal(t, []string{"jb@beta"}, deadLetterJobs(t, adminCall(t, h, http.MethodGet, list+"?namespace=beta", "root", "")))
	require.Equal(t, []string{"jb@beta"}, deadLetterJobs(t, adminCall(t, h, http.MethodGet, list+"?consumer=graph-writer", "root", "")))
	require.Empty(t, deadLetterJobs(t, adminCall(t, h, http.MethodGet, list+"?consumer=graph-writer", "alpha-admin", "")))
	require.Equal(t, http.StatusForbidden, adminCall(t, h, http.MethodGet, list+"?namespace=beta", "alpha-admin", "").status)

	get := func(seq uint64, id string) adminReply {
		return adminCall(t, h, http.MethodGet, list+"/"+strconv.FormatUint(seq, 10), id, "")
	}
	r := get(alpha, "alpha-admin")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var d ingestapi.DeadLetterView
	r.decode(t, &d)
	require.Equal(t, ingestapi.DeadLetterView{Seq: alpha, Time: d.Time, Consumer: bus.ConsumerDedup, Subject: "kgraph.events.document.submitted",
		StreamSeq: 7, Type: string(events.TypeDocumentSubmitted), EventID: "evt-ja", JobID: "ja", Namespace: "alpha", Reason: "boom for ja",
		Deliveries: 3, Payload: `{"job_id":"ja","doc_id":"d1","namespace":"alpha","content":"text"}`, PayloadBytes: 66,
		Headers: d.Headers}, d)
	require.Equal(t, []string{"evt-ja"}, d.Headers[events.HeaderID])
	require.NotContains(t, d.Headers, bus.HeaderDLQReason)
	require.Equal(t, http.StatusNotFound, get(beta, "alpha-admin").status, "another namespace's dead letter does not exist for the key")
	require.Equal(t, http.StatusNotFound, get(orphan, "alpha-admin").status)
	require.Equal(t, http.StatusOK, get(orphan, "root").status)
	require.Equal(t, http.StatusNotFound, get(9999, "root").status)

	replay := adminCall(t, h, http.MethodPost, list+"/"+strconv.FormatUint(beta, 10)+"/replay", "alpha-admin", "")
	require.Equal(t, http.StatusNotFound, replay.status)
	_, err := b.store.Get(context.Background(), beta)
	require.NoError(t, err, "a dead letter the key cannot see is not replayed")
}

func TestDeadLetterPagesAndInput(t *testing.T) {
	b := newAdminBus(t)
	for i := range 5 {
		b.deadLetter(t, bus.ConsumerDedup, "alpha", fmt.Sprint("j", i))
	}
	h := newAdminEdge(t, ingestapi.Deps{DeadLetters: b.store}, nil)
	var got []string
	path := "/api/v1/admin/dead-letters?limit=2"
	for range 10 {
		r := adminCall(t, h, http.MethodGet, path, "alpha-admin", "")
		got = append(got, deadLetterJobs(t, r)...)
		var page ingestapi.DeadLetterList
		r.decode(t, &page)
		if page.NextCursor == "" {
			break
		}
		path = "/api/v1/admin/dead-letters?limit=2&cursor=" + page.NextCursor
	}
	require.Equal(t, []string{"j0@alpha", "j1@alpha", "j2@alpha", "j3@alpha", "j4@alpha"}, got)

	for _, bad := range []string{
		"/api/v1/admin/dead-letters?cursor=abc",
		"/api/v1/admin/dead-letters?cursor=99999999999999999999",
		"/api/v1/admin/dead-letters?limit=0",
		"/api/v1/admin/dead-letters?limit=501",
		"/api/v1/admin/dead-letters?consumer=dedup.%3E",
		"/api/v1/admin/dead-letters?namespace=..%2Fx",
		"/api/v1/admin/dead-letters/abc",
		"/api/v1/admin/dead-letters/0",
		"/api/v1/admin/dead-letters/-1",
	} {
		r := adminCall(t, h, http.MethodGet, bad, "root", "")
		require.True(t, r.status == http.StatusUnprocessableEntity || r.status == http.StatusBadRequest, "%s: %d %s", bad, r.status, r.body)
	}
}

func TestDeadLetterReplayRepublishesTheEvent(t *testing.T) {
	b := newAdminBus(t)
	seq := b.deadLetter(t, bus.ConsumerDedup, "alpha", "jr")
	h := newAdminEdge(t, ingestapi.Deps{DeadLetters: b.store}, nil)
	path := "/api/v1/admin/dead-letters/" + strconv.FormatUint(seq, 10) + "/replay"

	r := adminCall(t, h, http.MethodPost, path, "alpha-admin", "")
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var out ingestapi.ReplayReply
	r.decode(t, &out)
	require.Equal(t, seq, out.Seq)
	require.Equal(t, "evt-jr", out.EventID)
	require.False(t, out.Duplicate)

	st, err := b.js.Stream(context.Background(), bus.StreamEvents)
	require.NoError(t, err)
	m, err := st.GetMsg(context.Background(), out.StreamSeq)
	require.NoError(t, err)
	require.Equal(t, "kgraph.events.document.submitted", m.Subject)
	require.Equal(t, "evt-jr", m.Header.Get(events.HeaderID), "original headers")
	require.Equal(t, strconv.FormatUint(seq, 10), m.Header.Get(bus.HeaderReplayOf))
	require.Equal(t, out.MsgID, m.Header.Get(events.HeaderMsgID))
	require.Empty(t, m.Header.Get(bus.HeaderDLQReason))
	require.JSONEq(t, `{"job_id":"jr","doc_id":"d1","namespace":"alpha","content":"text"}`, string(m.Data))

	require.Equal(t, http.StatusNotFound, adminCall(t, h, http.MethodPost, path, "alpha-admin", "").status, "a second replay finds nothing")
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, info.State.Msgs, "the event was republished once")
}

// fakeDeadLetters fails as told.
type fakeDeadLetters struct {
	dl        bus.DeadLetter
	getErr    error
	replayErr error
}

func (f fakeDeadLetters) List(context.Context, bus.DeadLetterFilter, int) (bus.DeadLetterPage, error) {
	return bus.DeadLetterPage{}, f.getErr
}

func (f fakeDeadLetters) Get(context.Context, uint64) (bus.DeadLetter, error) { return f.dl, f.getErr }

func (f fakeDeadLetters) Replay(context.Context, uint64) (bus.Replayed, error) {
	return bus.Replayed{Seq: f.dl.Seq}, f.replayErr
}

func TestDeadLetterFailures(t *testing.T) {
	dl := bus.DeadLetter{Seq: 5, Namespace: "alpha"}
	cases := []struct {
		name       string
		dls        ingestapi.DeadLetters
		method     string
		path       string
		wantStatus int
	}{
		{"no store: list", nil, http.MethodGet, "/api/v1/admin/dead-letters", http.StatusServiceUnavailable},
		{"no store: get", nil, http.MethodGet, "/api/v1/admin/dead-letters/5", http.StatusServiceUnavailable},
		{"no store: replay", nil, http.MethodPost, "/api/v1/admin/dead-letters/5/replay", http.StatusServiceUnavailable},
		{"stream down: list", fakeDeadLetters{getErr: errors.New("nats: timeout")}, http.MethodGet, "/api/v1/admin/dead-letters", http.StatusServiceUnavailable},
		{"stream down: get", fakeDeadLetters{getErr: errors.New("nats: timeout")}, http.MethodGet, "/api/v1/admin/dead-letters/5", http.StatusServiceUnavailable},
		{"replay raced", fakeDeadLetters{dl: dl, replayErr: fmt.Errorf("x: %w", bus.ErrAlreadyReplayed)}, http.MethodPost, "/api/v1/admin/dead-letters/5/replay", http.StatusConflict},
		{"not replayable", fakeDeadLetters{dl: dl, replayErr: fmt.Errorf("x: %w", bus.ErrNotReplayable)}, http.MethodPost, "/api/v1/admin/dead-letters/5/replay", http.StatusConflict},
		{"gone meanwhile", fakeDeadLetters{dl: dl, replayErr: fmt.Errorf("x: %w", bus.ErrDeadLetterNotFound)}, http.MethodPost, "/api/v1/admin/dead-letters/5/replay", http.StatusNotFound},
		{"publish failed", fakeDeadLetters{dl: dl, replayErr: errors.New("nats: no response from stream")}, http.MethodPost, "/api/v1/admin/dead-letters/5/replay", http.StatusServiceUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newAdminEdge(t, ingestapi.Deps{DeadLetters: c.dls}, nil)
			r := adminCall(t, h, c.method, c.path, "root", "")
			require.Equal(t, c.wantStatus, r.status, string(r.body))
		})
	}
}

// schedulerStub answers the scheduler's subjects as the projection does,
// on its own connection.
func schedulerStub(t *testing.T, b adminBus, status events.SchedulerStatus) <-chan events.SchedulerCleanupRequest {
	t.Helper()
	nc, err := b.srv.Connect("projection")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	svc, err := micro.AddService(nc, micro.Config{Name: events.SchedulerServiceName, Version: "1.0.0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	require.NoError(t, svc.AddEndpoint("status", micro.HandlerFunc(func(r micro.Request) {
		_ = r.RespondJSON(status)
	}), micro.WithEndpointSubject(events.SchedulerStatusSubject)))
	got := make(chan events.SchedulerCleanupRequest, 10)
	require.NoError(t, svc.AddEndpoint("cleanup", micro.HandlerFunc(func(r micro.Request) {
		var req events.SchedulerCleanupRequest
		if err := json.Unmarshal(r.Data(), &req); err != nil {
			_ = r.Error("400", "unreadable request", nil)
			return
		}
		got <- req
		if req.DryRun {
			_ = r.RespondJSON(events.SchedulerCleanupReply{Expired: 1, JobIDsExpired: []string{"job_1"}, JobIDsPurged: []string{}})
			return
		}
		_ = r.Error("500", "kv store unavailable", nil)
	}), micro.WithEndpointSubject(events.SchedulerCleanupSubject)))
	require.NoError(t, nc.Flush())
	return got
}

func TestSchedulerIsForwarded(t *testing.T) {
	b := newAdminBus(t)
	last := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := events.SchedulerStatus{Interval: "1m0s", IntervalSeconds: 60, ApprovalTTL: "24h0m0s", ApprovalTTLSeconds: 86400,
		LastRunAt: last, NextRunAt: last.Add(time.Minute), LastExpired: 2, Runs: 3}
	got := schedulerStub(t, b, want)
	h := newAdminEdge(t, ingestapi.Deps{Query: b.nc}, nil)

	r := adminCall(t, h, http.MethodGet, "/api/v1/admin/scheduler/status", "alpha-admin", "")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var status events.SchedulerStatus
	r.decode(t, &status)
	require.Equal(t, want, status)

	r = adminCall(t, h, http.MethodPost, "/api/v1/admin/scheduler/cleanup", "root", `{"dry_run":true}`)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, events.SchedulerCleanupRequest{DryRun: true}, <-got)
	require.JSONEq(t, `{"expired":1,"purged":0,"job_ids_expired":["job_1"],"job_ids_purged":[]}`, string(r.body))

	r = adminCall(t, h, http.MethodPost, "/api/v1/admin/scheduler/cleanup", "root", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status, "a failure behind the scheduler is the scheduler being unavailable, never a 500 of the edge")
	require.Contains(t, string(r.body), "kv store unavailable")
	require.Equal(t, events.SchedulerCleanupRequest{}, <-got, "no body is a plain run")

	require.Equal(t, http.StatusForbidden, adminCall(t, h, http.MethodPost, "/api/v1/admin/scheduler/cleanup", "alpha-admin", `{"dry_run":true}`).status,
		"cleanup touches every namespace")
	require.Empty(t, got)
	require.Equal(t, http.StatusUnprocessableEntity, adminCall(t, h, http.MethodPost, "/api/v1/admin/scheduler/cleanup", "root", `{"dry_run":"yes"}`).status)
}

func TestSchedulerUnavailable(t *testing.T) {
	b := newAdminBus(t)
	h := newAdminEdge(t, ingestapi.Deps{Query: b.nc}, func(c *ingestapi.Config) { c.RequestTimeout = 300 * time.Millisecond })
	r := adminCall(t, h, http.MethodGet, "/api/v1/admin/scheduler/status", "root", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status, "nobody answers: %s", r.body)

	// A scheduler that never answers.
	silent, err := b.srv.Connect("silent")
	require.NoError(t, err)
	t.Cleanup(silent.Close)
	_, err = silent.Subscribe(events.SchedulerStatusSubject, func(*nats.Msg) {})
	require.NoError(t, err)
	_, err = silent.Subscribe(events.SchedulerCleanupSubject, func(*nats.Msg) {})
	require.NoError(t, err)
	require.NoError(t, silent.Flush())
	start := time.Now()
	require.Equal(t, http.StatusGatewayTimeout, adminCall(t, h, http.MethodGet, "/api/v1/admin/scheduler/status", "root", "").status)
	require.Equal(t, http.StatusGatewayTimeout, adminCall(t, h, http.MethodPost, "/api/v1/admin/scheduler/cleanup", "root", `{}`).status)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestAdminOperationsDeclareTheirRole(t *testing.T) {
	cfg := ingestapi.Config{Auth: ingestapi.AuthConfig{Disabled: true}}
	require.NoError(t, cfg.Validate())
	api := ingestapi.New(cfg, ingestapi.Deps{}).OpenAPI()
	want := map[string]string{"info": "read", "list-dead-letters": "admin", "get-dead-letter": "admin", "replay-dead-letter": "admin",
		"scheduler-status": "admin", "scheduler-cleanup": "admin"}
	got := map[string]any{}
	for _, item := range api.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post} {
			if op != nil {
				if _, ok := want[op.OperationID]; ok {
					got[op.OperationID] = op.Metadata["role"]
				}
			}
		}
	}
	require.Len(t, got, len(want))
	for id, role := range want {
		require.Equal(t, role, got[id], id)
	}
}
