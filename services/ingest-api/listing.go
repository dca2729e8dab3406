package ingestapi

import (
	"context"
	"encoding/base64"
	"log/slog"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// Jobs and documents are listed from their indexes in the KV store (see
// jobstate): a page reads a page of index entries and the records they
// name, however many records there are, instead of every record.

// maxListScan bounds the index entries that one page examines: under
// filters that few records match, a page can hold fewer than limit items,
// and its next_cursor goes on from where it stopped.
const maxListScan = 5000

// indexListings are the listings of an index to read for a principal: one
// namespace's, every record's, or those of each namespace the key may
// access, merged.
func indexListings(p Principal, namespace, all string, byNamespace func(string) string) []string {
	switch {
	case namespace != "":
		return []string{byNamespace(namespace)}
	case p.All:
		return []string{all}
	}
	prefixes := make([]string, 0, len(p.Namespaces))
	for _, ns := range p.Namespaces {
		prefixes = append(prefixes, byNamespace(ns))
	}
	return prefixes
}

// indexPage is one page of the records listed under prefixes, after the
// position after ("" for the first page). It reads the records that a batch
// of entries names (read, a jobstate.Repository's) and keeps those that keep
// accepts; an entry without a record (on its way in or out) is skipped. It
// returns at most limit items and the position to continue after, "" on the
// last page.
func indexPage[R, T any](ctx context.Context, store Records, prefixes []string, after string, limit int,
	read func(ctx context.Context, positions []string) ([]*R, error), keep func(*R) (T, bool), log *slog.Logger) ([]T, string, error) {
	walk := newIndexWalk(store, prefixes, after, min(limit+1, 100))
	items := []T{}
	var (
		positions []string // of items
		scanned   int
		last      string // the last position examined
	)
	for len(items) <= limit && scanned < maxListScan {
		// At least a few dozen at once: under a filter, most entries may
		// not be kept.
		batch, err := walk.next(ctx, min(max(limit+1-len(items), 64), maxListScan-scanned))
		if err != nil {
			return nil, "", err
		}
		if len(batch) == 0 {
			break
		}
		scanned += len(batch)
		records, failures := read(ctx, batch)
		if failures != nil {
			log.WarnContext(ctx, "read records", "err", failures)
		}
		for i, rec := range records {
			last = batch[i]
			if rec == nil {
				continue
			}
			if item, ok := keep(rec); ok {
				items, positions = append(items, item), append(positions, batch[i])
				if len(items) > limit {
					break
				}
			}
		}
	}
	switch {
	case len(items) > limit:
		return items[:limit], positions[limit-1], nil
	case scanned >= maxListScan && !walk.done():
		return items, last, nil
	}
	return items, "", nil
}

// encodeCursor makes the opaque cursor of a position; "" stays "".
func encodeCursor(pos string) string {
	if pos == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(pos))
}

// decodeCursor returns the position of a cursor that this API returned.
func decodeCursor(cursor string, valid func(pos string) bool) (string, error) {
	if cursor == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !utf8.Valid(raw) || !valid(string(raw)) {
		return "", huma.Error422UnprocessableEntity("cursor is not one this API returned", &huma.ErrorDetail{Location: "query.cursor", Value: cursor})
	}
	return string(raw), nil
}

// indexWalk reads an index in order, merging several of its listings (each
// in order already), a page of each at a time.
type indexWalk struct {
	store    Records
	pageSize int
	sources  []*indexSource
}

type indexSource struct {
	prefix string
	after  string   // the last position read from the store
	buf    []string // positions read and not yet taken
	ended  bool     // the store has nothing after buf
}

func newIndexWalk(store Records, prefixes []string, after string, pageSize int) *indexWalk {
	w := &indexWalk{store: store, pageSize: pageSize}
	for _, p := range prefixes {
		w.sources = append(w.sources, &indexSource{prefix: p, after: after})
	}
	return w
}

// next returns up to n positions following the last one returned.
func (w *indexWalk) next(ctx context.Context, n int) ([]string, error) {
	var out []string
	for len(out) < n {
		var first *indexSource
		for _, src := range w.sources {
			if len(src.buf) == 0 && !src.ended {
				if err := w.fill(ctx, src); err != nil {
					return nil, err
				}
			}
			if len(src.buf) > 0 && (first == nil || src.buf[0] < first.buf[0]) {
				first = src
			}
		}
		if first == nil {
			break
		}
		out = append(out, first.buf[0])
		first.buf = first.buf[1:]
	}
	return out, nil
}

func (w *indexWalk) fill(ctx context.Context, src *indexSource) error {
	after := ""
	if src.after != "" {
		after = src.prefix + src.after
	}
	keys, err := w.store.KeysAfter(ctx, src.prefix, after, w.pageSize)
	if err != nil {
		return err
	}
	for _, k := range keys {
		src.buf = append(src.buf, k[len(src.prefix):])
	}
	if len(keys) > 0 {
		src.after = src.buf[len(src.buf)-1]
	}
	src.ended = len(keys) < w.pageSize
	return nil
}

// done reports whether every position has been returned.
func (w *indexWalk) done() bool {
	for _, src := range w.sources {
		if len(src.buf) > 0 || !src.ended {
			return false
		}
	}
	return true
}
