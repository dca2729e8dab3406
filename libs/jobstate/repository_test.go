package jobstate_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/internal/natstest"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/natskv"
)

// newStore is the records' real store, a JetStream KV bucket on an
// embedded server.
func newStore(t *testing.T) *natskv.Store {
	t.Helper()
	_, conn := natstest.Run(t)
	js, err := jetstream.New(conn)
	require.NoError(t, err)
	s, err := natskv.Open(t.Context(), js, "jobs")
	require.NoError(t, err)
	return s
}

func put(t *testing.T, s *natskv.Store, key string, raw []byte) uint64 {
	t.Helper()
	rev, err := s.Put(t.Context(), key, raw)
	require.NoError(t, err)
	return rev
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return raw
}

func TestRepositoryReads(t *testing.T) {
	s := newStore(t)
	repo := jobstate.NewRepository(s)
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	job := jobstate.Job{JobID: "job-1", DocID: "doc.1", Namespace: "books", Status: jobstate.StatusProcessing,
		ChunksTotal: 3, CreatedAt: created}
	job.Merged.Set(2)
	doc := jobstate.Document{DocID: "doc.1", Namespace: "books", JobID: "job-1", Status: jobstate.DocReady, CreatedAt: created}
	jobRev := put(t, s, jobstate.JobKey("job-1"), mustJSON(t, job))
	docRev := put(t, s, jobstate.DocKey("books", "doc.1"), mustJSON(t, doc))
	corruptRev := put(t, s, jobstate.JobKey("job-garbled"), []byte("{not json"))
	put(t, s, jobstate.DocKey("books", "doc-garbled"), []byte(`{"doc_id": 7}`))
	put(t, s, jobstate.JobKey("job-old"), []byte(`{"job_id":"job-old","status":"completed"}`))

	tests := []struct {
		name    string
		read    func(ctx context.Context) (any, uint64, error)
		want    any
		wantRev uint64
		wantErr error
		// errText is what the error must say: which record, and why.
		errText string
	}{
		{name: "job", want: job, wantRev: jobRev,
			read: func(ctx context.Context) (any, uint64, error) { return repo.Job(ctx, "job-1") }},
		{name: "document", want: doc, wantRev: docRev,
			read: func(ctx context.Context) (any, uint64, error) { return repo.Document(ctx, "books", "doc.1") }},
		{name: "missing job", wantErr: jobstate.ErrNotFound, errText: "job job-missing",
			read: func(ctx context.Context) (any, uint64, error) { return repo.Job(ctx, "job-missing") }},
		{name: "document of another namespace", wantErr: jobstate.ErrNotFound, errText: "document films/doc.1",
			read: func(ctx context.Context) (any, uint64, error) { return repo.Document(ctx, "films", "doc.1") }},
		{name: "corrupt job keeps its revision", wantRev: corruptRev, wantErr: jobstate.ErrCorrupt, errText: "job job-garbled: jobstate: record does not decode: invalid character",
			read: func(ctx context.Context) (any, uint64, error) {
				_, rev, err := repo.Job(ctx, "job-garbled")
				return nil, rev, err
			}},
		{name: "corrupt document", wantErr: jobstate.ErrCorrupt, errText: "document books/doc-garbled: jobstate: record does not decode",
			read: func(ctx context.Context) (any, uint64, error) {
				_, _, err := repo.Document(ctx, "books", "doc-garbled")
				return nil, 0, err
			}},
		{name: "status alone", want: [2]string{"processing", "ingest"},
			read: func(ctx context.Context) (any, uint64, error) {
				st, kind, err := repo.JobStatus(ctx, "job-1")
				return [2]string{string(st), kind}, 0, err
			}},
		{name: "status of a record from before kinds", want: [2]string{"completed", "ingest"},
			read: func(ctx context.Context) (any, uint64, error) {
				st, kind, err := repo.JobStatus(ctx, "job-old")
				return [2]string{string(st), kind}, 0, err
			}},
		{name: "status of a missing job", wantErr: jobstate.ErrNotFound,
			read: func(ctx context.Context) (any, uint64, error) {
				_, _, err := repo.JobStatus(ctx, "job-missing")
				return nil, 0, err
			}},
		{name: "status of a corrupt job", wantErr: jobstate.ErrCorrupt,
			read: func(ctx context.Context) (any, uint64, error) {
				_, _, err := repo.JobStatus(ctx, "job-garbled")
				return nil, 0, err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rev, err := tt.read(t.Context())
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.ErrorContains(t, err, tt.errText)
				require.Equal(t, tt.wantRev, rev)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantRev, rev)
			if tt.want != nil {
				requireSameRecord(t, tt.want, got)
			}
		})
	}
}

// requireSameRecord compares records by their JSON, which is what the
// store holds (times lose their monotonic reading on the way).
func requireSameRecord(t *testing.T, want, got any) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g))
}

// failingRecords fails every read, like an unreachable store.
type failingRecords struct{ err error }

func (f failingRecords) Get(context.Context, string) ([]byte, uint64, error) { return nil, 0, f.err }

func TestRepositoryStoreFailureIsWrapped(t *testing.T) {
	outage := errors.New("connection refused")
	_, _, err := jobstate.NewRepository(failingRecords{outage}).Job(t.Context(), "job-1")
	require.ErrorIs(t, err, outage, "an outage classifier must still see the store's error")
	require.NotErrorIs(t, err, jobstate.ErrNotFound)
	require.ErrorContains(t, err, "read job job-1")
}

func TestIndexedRecords(t *testing.T) {
	s := newStore(t)
	repo := jobstate.NewRepository(s)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	live := jobstate.Job{JobID: "job-live", Namespace: "books", CreatedAt: at}
	put(t, s, jobstate.JobKey("job-live"), mustJSON(t, live))
	put(t, s, jobstate.JobKey("job-garbled"), []byte("{"))
	doc := jobstate.Document{DocID: "d:1", Namespace: "books", CreatedAt: at}
	put(t, s, jobstate.DocKey("books", "d:1"), mustJSON(t, doc))

	jobs, failures := repo.IndexedJobs(t.Context(), []string{
		jobstate.JobPosition(at, "job-live"),
		jobstate.JobPosition(at.Add(-time.Hour), "job-live"), // an entry of an earlier creation time
		jobstate.JobPosition(at, "job-missing"),
		"not a position",
		jobstate.JobPosition(at, "job-garbled"),
	})
	require.Len(t, jobs, 5)
	require.NotNil(t, jobs[0])
	require.Equal(t, "job-live", jobs[0].JobID)
	for i, j := range jobs[1:] {
		require.Nil(t, j, "entry %d lists no job", i+1)
	}
	require.ErrorIs(t, failures, jobstate.ErrCorrupt, "the unreadable record is reported, the missing one is not")
	require.NotErrorIs(t, failures, jobstate.ErrNotFound)

	docs, failures := repo.IndexedDocuments(t.Context(), []string{
		jobstate.DocPosition(at, "books", "d:1"),
		jobstate.DocPosition(at, "films", "d:1"),
	})
	require.NoError(t, failures)
	require.Len(t, docs, 2)
	require.NotNil(t, docs[0])
	require.Equal(t, "d:1", docs[0].DocID)
	require.Nil(t, docs[1])
}

func TestKeysAndRefsRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		parse func() (string, bool)
		want  string
		ok    bool
	}{
		{name: "content ref", want: "job_1a2b", ok: true,
			parse: func() (string, bool) { return jobstate.ParseContentRef(jobstate.ContentRef("job_1a2b")) }},
		{name: "content ref of an outside publisher",
			parse: func() (string, bool) { return jobstate.ParseContentRef("uploads/report.txt") }},
		{name: "content ref without a job",
			parse: func() (string, bool) { return jobstate.ParseContentRef("job/") }},
		{name: "job key", want: "job-1", ok: true,
			parse: func() (string, bool) { return jobstate.ParseJobKey(jobstate.JobKey("job-1")) }},
		{name: "not a job key",
			parse: func() (string, bool) { return jobstate.ParseJobKey("claim.books.abc") }},
		{name: "document key", want: "books|doc.1:x", ok: true,
			parse: func() (string, bool) {
				ns, id, ok := jobstate.ParseDocKey(jobstate.DocKey("books", "doc.1:x"))
				return ns + "|" + id, ok
			}},
		{name: "document key without an id",
			parse: func() (string, bool) { ns, id, ok := jobstate.ParseDocKey("doc.books."); return ns + id, ok }},
		{name: "document key of another encoding",
			parse: func() (string, bool) { ns, id, ok := jobstate.ParseDocKey("doc.books.zz"); return ns + id, ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.parse()
			require.Equal(t, tt.ok, ok)
			if tt.ok {
				require.Equal(t, tt.want, got)
			}
		})
	}
	require.Equal(t, "job/job_1a2b", jobstate.ContentRef("job_1a2b"), "the stored names of existing texts keep their scheme")
}
