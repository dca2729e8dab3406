package projection_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/services/projection"
)

// index returns the job index entries under prefix.
func (h harness) index(t *testing.T, prefix string) []string {
	t.Helper()
	keys, err := h.jobs.Keys(context.Background(), prefix)
	require.NoError(t, err)
	return keys
}

// indexed is a record's pair of index keys: [every record's list, its
// namespace's list].
type indexed struct {
	namespace string
	keys      []string
}

// requireIndex checks that the lists under all and byNamespace hold exactly
// the keys of records.
func (h harness) requireIndex(t *testing.T, all string, byNamespace func(string) string, records []indexed) {
	t.Helper()
	everyKey := []string{}
	byNS := map[string][]string{}
	for _, r := range records {
		everyKey = append(everyKey, r.keys[0])
		byNS[r.namespace] = append(byNS[r.namespace], r.keys[1])
	}
	slices.Sort(everyKey)
	require.Equal(t, everyKey, h.index(t, all))
	for ns, keys := range byNS {
		slices.Sort(keys)
		require.Equal(t, keys, h.index(t, byNamespace(ns)), "namespace %s", ns)
	}
}

// requireIndexed checks that the job index lists exactly jobIDs, each at
// the position of its record.
func (h harness) requireIndexed(t *testing.T, jobIDs ...string) {
	t.Helper()
	var records []indexed
	for _, id := range jobIDs {
		j := h.job(t, id)
		records = append(records, indexed{j.Namespace, jobstate.JobIndexKeys(&j)})
	}
	h.requireIndex(t, jobstate.JobIndexPrefixAll, jobstate.JobIndexPrefix, records)
}

func TestJobIndexFollowsTheRecords(t *testing.T) {
	h := newHarness(t)
	h.runProjection(t, projection.Config{Concurrency: 1})

	a, b := newFlow("job-a"), newFlow("job-b")
	b.ref.Namespace = "papers"
	// job-a's first event is not its submission: its record starts with
	// the time of the first event and moves to the submission's later.
	h.publish(t, a.accepted())
	h.waitIdle(t)
	require.NotEqual(t, submittedAt, h.job(t, "job-a").CreatedAt.UTC())
	h.requireIndexed(t, "job-a")

	h.publish(t, a.submitted(), b.submitted())
	h.waitIdle(t)
	require.Equal(t, submittedAt, h.job(t, "job-a").CreatedAt.UTC())
	h.requireIndexed(t, "job-a", "job-b")
	require.Len(t, h.index(t, jobstate.JobIndexPrefix("books")), 1, "the entry of the first creation time is gone")

	// Redelivered and later events change nothing in the index.
	h.publish(t, append([]step{a.submitted().withID("again"), a.chunked()}, a.allMerged()...)...)
	h.waitIdle(t)
	h.requireIndexed(t, "job-a", "job-b")
	h.requireNoDeadLetters(t)
}

func TestSchedulerRepairsTheJobIndex(t *testing.T) {
	h := newHarness(t)
	clk := &clock{}
	svc := projection.New(projection.Config{Concurrency: 1, Retention: 7 * 24 * time.Hour}, h.bus, h.jobs, h.nc)
	projection.SetClock(svc, clk.now)
	h.run(t, svc)
	ctx := context.Background()

	kept, unindexed, purged := newFlow("job-kept"), newFlow("job-unindexed"), newFlow("job-purged")
	h.publish(t, kept.submitted(), unindexed.submitted(), purged.submittedAs(submittedAt, false, false), purged.cancelled(""))
	h.waitIdle(t)
	h.requireIndexed(t, "job-kept", "job-unindexed", "job-purged")

	// A record from before the index existed.
	uj := h.job(t, "job-unindexed")
	for _, k := range jobstate.JobIndexKeys(&uj) {
		require.NoError(t, h.jobs.Delete(ctx, k))
	}
	// Entries without a record: one long past (a crash between entry and
	// record, long ago), one of a job being written right now.
	stale := jobstate.JobIndexPrefixAll + jobstate.JobPosition(time.Now().Add(-time.Hour), "job-crashed")
	fresh := jobstate.JobIndexPrefixAll + jobstate.JobPosition(time.Now(), "job-being-written")
	for _, k := range []string{stale, fresh} {
		_, err := h.jobs.Put(ctx, k, []byte("1"))
		require.NoError(t, err)
	}

	dry, err := svc.Cleanup(ctx, true)
	require.NoError(t, err)
	require.Zero(t, dry.Purged, "cancelled just now")
	require.Contains(t, h.index(t, jobstate.JobIndexPrefixAll), stale, "a dry run repairs nothing")

	_, err = svc.Cleanup(ctx, false)
	require.NoError(t, err)
	require.NotContains(t, h.index(t, jobstate.JobIndexPrefixAll), stale)
	require.Contains(t, h.index(t, jobstate.JobIndexPrefixAll), fresh, "an entry of a job just created stays")
	require.NoError(t, h.jobs.Delete(ctx, fresh))
	h.requireIndexed(t, "job-kept", "job-unindexed", "job-purged")

	clk.advance(8 * 24 * time.Hour)
	reply, err := svc.Cleanup(ctx, false)
	require.NoError(t, err)
	require.Equal(t, []string{"job-purged"}, reply.JobIDsPurged)
	h.requireIndexed(t, "job-kept", "job-unindexed")
	h.requireNoDeadLetters(t)
}

// requireDocIndexed checks that the document index lists exactly docs, each
// at the position of its record.
func (h harness) requireDocIndexed(t *testing.T, docs ...jobstate.Document) {
	t.Helper()
	var records []indexed
	for _, d := range docs {
		records = append(records, indexed{d.Namespace, jobstate.DocIndexKeys(&d)})
	}
	h.requireIndex(t, jobstate.DocIndexPrefixAll, jobstate.DocIndexPrefix, records)
}

func TestDocumentIndexFollowsTheRecords(t *testing.T) {
	h := newHarness(t)
	clk := &clock{}
	svc := projection.New(projection.Config{Concurrency: 1}, h.bus, h.jobs, h.nc)
	projection.SetClock(svc, clk.now)
	h.run(t, svc)
	ctx := context.Background()

	kept, gone := newFlow("job-kept"), newFlow("job-gone")
	gone.ref.DocID = "doc:gone.1-2"
	keptDoc, goneDoc := h.ingested(t, kept), h.ingested(t, gone)
	h.requireDocIndexed(t, keptDoc, goneDoc)

	del := newDeletion("job-del", gone)
	h.publish(t, del.deleted(), del.unmerged(), del.unindexed())
	h.waitIdle(t)
	h.requireNoDocument(t, gone.ref)
	h.requireDocIndexed(t, keptDoc)

	// A store written before the index existed, and an entry left by a
	// crash after a record's deletion.
	for _, k := range jobstate.DocIndexKeys(&keptDoc) {
		require.NoError(t, h.jobs.Delete(ctx, k))
	}
	stale := jobstate.DocIndexKeys(&goneDoc)[1]
	_, err := h.jobs.Put(ctx, stale, []byte("1"))
	require.NoError(t, err)
	clk.advance(time.Hour)
	_, err = svc.Cleanup(ctx, false)
	require.NoError(t, err)
	h.requireDocIndexed(t, keptDoc)
	h.requireNoDeadLetters(t)
}
