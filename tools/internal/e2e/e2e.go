// Package e2e holds what the end-to-end tests share: a generated corpus and
// a small client of the REST edge.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

var (
	people = []string{"Ada Lovelace", "Charles Babbage", "Mary Somerville", "Michael Faraday", "Augusta King",
		"John Herschel", "Caroline Herschel", "Isambard Brunel", "George Boole", "Florence Nightingale",
		"Charles Dickens", "Emily Davies", "William Whewell", "Humphry Davy", "Thomas Young"}
	places = []string{"London", "Bristol", "Cambridge", "Edinburgh", "Oxford", "Dublin", "Manchester", "Bath"}
	things = []string{"Analytical Engine", "Difference Engine", "Royal Society", "Bank of England", "Great Western Railway",
		"Royal Institution", "British Museum", "Thames Tunnel"}
	verbs = []string{"wrote to", "visited", "argued with", "worked beside", "admired", "corresponded with", "met", "lectured with"}
	fill  = []string{"in the spring", "after a long winter", "during the exhibition", "before the lecture", "on a rainy morning",
		"with great enthusiasm", "despite the doubts of many", "for the first time"}
)

// Corpus returns a deterministic document of about the given number of
// tokens (cl100k), made of sentences that name people, places and things, so
// that the offline extractor finds entities and relations in every chunk.
func Corpus(seed uint64, approxTokens int) string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	var b strings.Builder
	// About 16 tokens a sentence.
	for i := 0; i < approxTokens/16; i++ {
		switch r.IntN(3) {
		case 0:
			fmt.Fprintf(&b, "%s %s %s in %s %s. ", pick(people), pick(verbs), pick(people), pick(places), pick(fill))
		case 1:
			fmt.Fprintf(&b, "In %s, %s studied the %s %s. ", pick(places), pick(people), pick(things), pick(fill))
		default:
			fmt.Fprintf(&b, "The %s was praised by %s and %s. ", pick(things), pick(people), pick(people))
		}
		if i%12 == 11 {
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

// Client talks to the REST edge.
type Client struct {
	Base string
	HTTP *http.Client
	// APIKey is sent as X-API-Key when set.
	APIKey string
}

// Response is a decoded reply.
type Response struct {
	Status      int
	ContentType string
	Body        map[string]any
	Raw         []byte
}

// Do sends a request with a raw body.
func (c Client) Do(ctx context.Context, method, path, contentType string, body []byte) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.APIKey != "" {
		req.Header.Set("X-API-Key", c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	out := Response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Raw: raw}
	_ = json.Unmarshal(raw, &out.Body)
	return out, nil
}

// JSON sends a JSON body.
func (c Client) JSON(ctx context.Context, method, path string, v any) (Response, error) {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return Response{}, err
		}
	}
	return c.Do(ctx, method, path, "application/json", body)
}

// WaitJob polls a job until its status is terminal or the timeout passes.
func (c Client) WaitJob(ctx context.Context, jobID string, timeout time.Duration) (map[string]any, error) {
	deadline := time.Now().Add(timeout)
	var last Response
	for time.Now().Before(deadline) {
		r, err := c.JSON(ctx, http.MethodGet, "/api/v1/jobs/"+jobID, nil)
		if err == nil && r.Status == http.StatusOK {
			last = r
			switch r.Body["status"] {
			case "completed", "duplicate", "failed", "cancelled", "expired":
				return r.Body, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return last.Body, fmt.Errorf("job %s not finished after %s (last: %s)", jobID, timeout, last.Raw)
}
