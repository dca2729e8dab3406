package ingestapi_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
	"github.com/kgraph-dev/kgraph/libs/natskv"
	"github.com/kgraph-dev/kgraph/libs/redisstore"
	"github.com/kgraph-dev/kgraph/libs/redistest"
	"github.com/kgraph-dev/kgraph/services/ingest-api"
)

// BenchmarkJobListing measures GET /api/v1/jobs?limit=50 (the first page,
// through the edge's handler) on the real stores holding n jobs of which
// a tenth are in the listed namespace, next to the scan that listing did
// before the job index: read every job record, sort, cut a page (run on the
// store directly, without HTTP).
//
//	cd services/ingest-api && GOWORK=off go test -run='^$' -bench=JobListing -benchtime=20x .
func BenchmarkJobListing(b *testing.B) {
	for _, store := range []string{"nats", "redis"} {
		for _, n := range []int{1_000, 10_000, 50_000} {
			jobs := openBenchStore(b, store)
			fillJobs(b, jobs, n)
			srv := ingestapi.New(ingestapi.Config{Auth: ingestapi.AuthConfig{Disabled: true}}, ingestapi.Deps{
				Publisher: &fakePublisher{}, Documents: &fakeDocuments{}, Jobs: jobs, Claims: jobs, Query: &fakeRequester{},
				Logger: slog.New(slog.DiscardHandler),
			})
			for _, path := range []string{"/api/v1/jobs?limit=50", "/api/v1/jobs?limit=50&namespace=ns3"} {
				b.Run(fmt.Sprintf("store=%s/jobs=%d/index/%s", store, n, strings.TrimPrefix(path, "/api/v1/jobs?limit=50")), func(b *testing.B) {
					for b.Loop() {
						rec := httptest.NewRecorder()
						srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
						if rec.Code != http.StatusOK {
							b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
						}
						var page ingestapi.JobList
						if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Jobs) != 50 {
							b.Fatalf("%s: %d jobs, %v", path, len(page.Jobs), err)
						}
					}
				})
			}
			b.Run(fmt.Sprintf("store=%s/jobs=%d/scan", store, n), func(b *testing.B) {
				for b.Loop() {
					if page := scanJobs(b, jobs, 50); len(page) != 50 {
						b.Fatalf("%d jobs", len(page))
					}
				}
			})
		}
	}
}

func openBenchStore(b *testing.B, kind string) backends.KVStore {
	b.Helper()
	ctx := context.Background()
	if kind == "redis" {
		s, err := redisstore.Open(ctx, redisstore.Config{URL: redistest.Start(b).URL(), Prefix: "kg:jobs:"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
	srv, err := natsembed.Start(natsembed.Config{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	nc, err := srv.Connect("bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "jobs"}); err != nil {
		b.Fatal(err)
	}
	s, err := natskv.Open(ctx, js, "jobs")
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// fillJobs writes n job records and their index entries, as the projection
// does, spread over ten namespaces.
func fillJobs(b *testing.B, s backends.KVStore, n int) {
	b.Helper()
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var g errgroup.Group
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			j := jobstate.Job{JobID: fmt.Sprintf("job_%08d", i), DocID: fmt.Sprintf("doc-%d", i), Namespace: fmt.Sprintf("ns%d", i%10),
				Status: jobstate.StatusCompleted, Kind: jobstate.KindIngest, ChunksTotal: 12, Entities: 40, Relations: 25,
				CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base.Add(time.Duration(i)*time.Second + time.Minute)}
			for _, k := range jobstate.JobIndexKeys(&j) {
				if _, err := s.Put(ctx, k, []byte("1")); err != nil {
					return err
				}
			}
			raw, _ := json.Marshal(j)
			_, err := s.Put(ctx, jobstate.JobKey(j.JobID), raw)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// scanJobs is how the edge listed jobs before the job index: every record
// read (16 at a time), sorted newest first, the first limit kept.
func scanJobs(b *testing.B, s backends.KVStore, limit int) []jobstate.Job {
	ctx := context.Background()
	keys, err := s.Keys(ctx, jobstate.JobKeyPrefix)
	if err != nil {
		b.Fatal(err)
	}
	all := make([]jobstate.Job, len(keys))
	var g errgroup.Group
	g.SetLimit(16)
	for i, k := range keys {
		g.Go(func() error {
			raw, _, err := s.Get(ctx, k)
			if err != nil {
				return err
			}
			return json.Unmarshal(raw, &all[i])
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	slices.SortFunc(all, func(a, b jobstate.Job) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.JobID, a.JobID))
	})
	return all[:min(limit, len(all))]
}
