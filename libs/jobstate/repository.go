package jobstate

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/kgraph-dev/kgraph/libs/kv"
)

// The repository's errors, wrapped with the record they are about so that
// callers test them with errors.Is. A store failure is wrapped as it came,
// so an outage classifier still sees it.
var (
	// ErrNotFound: the projection has written no such record (not yet, or
	// it has been purged or deleted).
	ErrNotFound = errors.New("jobstate: no such record")
	// ErrCorrupt: the stored record does not decode. Retrying cannot fix
	// it; the projection's next write of the record replaces it.
	ErrCorrupt = errors.New("jobstate: record does not decode")
)

// Records is what the repository reads of the KV store that holds the
// records (a kv.Store is one). It only reads: the projection is the one
// writer of job and document records.
type Records interface {
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
}

// Repository reads and decodes the job and document records the projection
// writes. Every service that looks at a record goes through it, so the key
// scheme, the decoding and its errors live in one place.
type Repository struct {
	records Records
}

// NewRepository reads records from records.
func NewRepository(records Records) *Repository { return &Repository{records: records} }

// Job returns a job's record and its revision. A record that does not
// decode gives ErrCorrupt with the revision it has, for a writer that
// replaces it.
func (r *Repository) Job(ctx context.Context, jobID string) (Job, uint64, error) {
	var j Job
	rev, err := r.read(ctx, "job "+jobID, JobKey(jobID), &j)
	return j, rev, err
}

// JobStatus returns a job's status and kind (KindIngest for records from
// before kinds existed). It decodes those two fields alone: the rest of a
// record (its chunk bitsets grow with the document) would be wasted on a
// caller that reads a job once per chunk.
func (r *Repository) JobStatus(ctx context.Context, jobID string) (Status, string, error) {
	var j struct {
		Status Status `json:"status"`
		Kind   string `json:"kind"`
	}
	if _, err := r.read(ctx, "job "+jobID, JobKey(jobID), &j); err != nil {
		return "", "", err
	}
	if j.Kind == "" {
		j.Kind = KindIngest
	}
	return j.Status, j.Kind, nil
}

// Document returns a document's record and its revision; like Job, a
// record that does not decode gives ErrCorrupt with its revision.
func (r *Repository) Document(ctx context.Context, namespace, docID string) (Document, uint64, error) {
	var d Document
	rev, err := r.read(ctx, "document "+namespace+"/"+docID, DocKey(namespace, docID), &d)
	return d, rev, err
}

// read gets key and decodes it into out; what names the record in errors.
func (r *Repository) read(ctx context.Context, what, key string, out any) (uint64, error) {
	raw, rev, err := r.records.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", what, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return rev, fmt.Errorf("%s: %w: %w", what, ErrCorrupt, err)
	}
	return rev, nil
}

// maxParallelReads bounds the records an index page reads at once.
const maxParallelReads = 16

// IndexedJobs reads the jobs that job index positions name (see
// JobPosition), concurrently, in the order of positions. An entry is nil
// where there is no job to list: the position is malformed, the record is
// missing or unreadable, or the record sorts elsewhere (an entry on its way
// out, see JobIndexKeys). failures joins the errors of the records that
// could not be read or decoded, for the caller to log; a missing record is
// no failure.
func (r *Repository) IndexedJobs(ctx context.Context, positions []string) (jobs []*Job, failures error) {
	return readIndexed(ctx, positions, func(ctx context.Context, pos string) (*Job, error) {
		_, id, ok := ParseJobPosition(pos)
		if !ok {
			return nil, nil
		}
		j, _, err := r.Job(ctx, id)
		if err != nil || JobPosition(j.CreatedAt, j.JobID) != pos {
			return nil, err
		}
		return &j, nil
	})
}

// IndexedDocuments is IndexedJobs for document index positions (see
// DocPosition).
func (r *Repository) IndexedDocuments(ctx context.Context, positions []string) (docs []*Document, failures error) {
	return readIndexed(ctx, positions, func(ctx context.Context, pos string) (*Document, error) {
		_, ns, id, ok := ParseDocPosition(pos)
		if !ok {
			return nil, nil
		}
		d, _, err := r.Document(ctx, ns, id)
		if err != nil || DocPosition(d.CreatedAt, d.Namespace, d.DocID) != pos {
			return nil, err
		}
		return &d, nil
	})
}

func readIndexed[T any](ctx context.Context, positions []string, read func(context.Context, string) (*T, error)) ([]*T, error) {
	out := make([]*T, len(positions))
	errs := make([]error, len(positions))
	var g errgroup.Group
	g.SetLimit(maxParallelReads)
	for i, pos := range positions {
		g.Go(func() error {
			rec, err := read(ctx, pos)
			if err != nil && !errors.Is(err, ErrNotFound) {
				errs[i] = err
			}
			if err == nil {
				out[i] = rec
			}
			return nil
		})
	}
	_ = g.Wait() // the workers report through errs
	return out, errors.Join(errs...)
}

// ParseJobKey returns the job id of a job record key (JobKey).
func ParseJobKey(key string) (jobID string, ok bool) {
	id, found := strings.CutPrefix(key, JobKeyPrefix)
	return id, found && id != ""
}

// ParseDocKey returns the namespace and document id of a document record
// key (DocKey).
func ParseDocKey(key string) (namespace, docID string, ok bool) {
	rest, found := strings.CutPrefix(key, DocKeyPrefixAll)
	ns, encoded, cut := strings.Cut(rest, ".")
	if !found || !cut || ns == "" || encoded == "" {
		return "", "", false
	}
	id, err := hex.DecodeString(encoded)
	if err != nil {
		return "", "", false
	}
	return ns, string(id), true
}

// contentRefPrefix starts the object-store name of the document text that
// belongs to one job: the text the edge stores on submission, or the one
// dedup keeps for a job held for approval.
const contentRefPrefix = "job/"

// ContentRef is the object-store name of a job's own copy of its document
// text. Whatever mints or recognises one goes through ContentRef and
// ParseContentRef, so the scheme changes in one place.
func ContentRef(jobID string) string { return contentRefPrefix + jobID }

// ParseContentRef returns the job whose own text ref names; ok is false for
// a ref of another kind (text stored by an outside publisher).
func ParseContentRef(ref string) (jobID string, ok bool) {
	id, found := strings.CutPrefix(ref, contentRefPrefix)
	return id, found && id != ""
}
