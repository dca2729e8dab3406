package ingestapi_test

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/kgraph-dev/kgraph/events"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

// fuzzRequestDecoder sends arbitrary bodies to one endpoint: whatever the
// bytes, the edge answers below 500, and every refusal is a problem.
func fuzzRequestDecoder(f *testing.F, method, path string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	cfg := ingestapi.Config{MaxBodyBytes: 64 << 10}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newEdge(t, cfg)
		// A query that passes the decoder gets an answer.
		e.query.reply = queryReply(t, events.QueryResponse{Answer: "a", Mode: "local"})
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		r := e.serve(t, req)
		if r.status >= 500 {
			t.Fatalf("%s %s answered %d to %q: %s", method, path, r.status, body, r.raw)
		}
		if r.status >= 400 && r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s %s refused %q without a problem: %s %s", method, path, body, r.header.Get("Content-Type"), r.raw)
		}
	})
}

func FuzzSubmitDocumentDecoder(f *testing.F) {
	fuzzRequestDecoder(f, "POST", "/api/v1/documents",
		`{"content":"Ada Lovelace","namespace":"a","doc_id":"d:1.2","metadata":{"k":"v"},"force":true,"auto_approve":false}`,
		`{"content":""}`, `{"content":12}`, `{"content":"x","bogus":1}`, `{"content":"x"`, `null`, `[]`, "\xff")
}

func FuzzBatchDecoder(f *testing.F) {
	fuzzRequestDecoder(f, "POST", "/api/v1/documents/batch",
		`{"documents":[{"content":"a"},{"content":"b","namespace":"n"}]}`, `{"documents":[]}`, `{"documents":"x"}`, `{"documents":[null]}`)
}

func FuzzQueryDecoder(f *testing.F) {
	fuzzRequestDecoder(f, "POST", "/api/v1/query",
		`{"question":"who?","mode":"local","top_k":5,"level":2}`, `{"question":"q","mode":"cosmic"}`, `{"question":"q","top_k":1e400}`,
		`{"question":"q","level":-1}`)
}

func FuzzJobActionDecoder(f *testing.F) {
	fuzzRequestDecoder(f, "POST", "/api/v1/jobs/job_1/cancel", `{"reason":"x"}`, `{}`, ``, `{"reason":5}`)
}
