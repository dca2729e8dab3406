package events_test

import (
	"context"
	"fmt"
	"log"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kgraph-dev/kgraph/events"
)

// submit is the Go example of docs/events.md; Example_submitDocument keeps it
// compiling.
func submit(ctx context.Context, js jetstream.JetStream, jobID, docID, namespace, text string) error {
	now := time.Now()
	e := events.New(
		// Stable per job: a retried publish carries the same id and is dropped.
		events.DerivedID(jobID, string(events.TypeDocumentSubmitted)),
		"urn:acme:wiki-sync",
		events.DocumentSubmitted{
			JobRef:      events.JobRef{JobID: jobID, DocID: docID, Namespace: namespace},
			Content:     text,
			Metadata:    map[string]string{"title": "R-7 engine overview"},
			ClientID:    "acme-wiki-sync",
			SubmittedAt: now.UTC(),
		},
		now,
	)
	msg, err := events.Encode(e)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", jobID, err)
	}
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish job %s: %w", jobID, err)
	}
	return nil
}

// An outside publisher starts an ingestion job by publishing
// document.submitted. (Not run: it needs a NATS server.)
func Example_submitDocument() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	text := "Acme Rockets ships the R-7 engine from its Tucson plant.\n"
	if err := submit(ctx, js, "acme-wiki-20250601-0001", "acme:handbook.rockets-r7", "acme-support", text); err != nil {
		log.Fatal(err)
	}
}

func ExampleEncode() {
	e := events.New("4f1c2b8e-6a0d-4c3e-9b7a-2d5e8f1a3c6b", "urn:acme:wiki sync €", events.JobFailed{
		JobRef: events.JobRef{JobID: "job-1", DocID: "doc-1", Namespace: "default"},
		Stage:  "extractor",
		Reason: "gave up",
	}, time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC))
	msg, err := events.Encode(e)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Subject)
	for _, k := range slices.Sorted(maps.Keys(msg.Header)) {
		fmt.Printf("%s: %s\n", k, msg.Header.Get(k))
	}
	fmt.Println(string(msg.Data))
	// Output:
	// kgraph.events.job.failed
	// Nats-Msg-Id: 4f1c2b8e-6a0d-4c3e-9b7a-2d5e8f1a3c6b
	// ce-datacontenttype: application/json
	// ce-id: 4f1c2b8e-6a0d-4c3e-9b7a-2d5e8f1a3c6b
	// ce-source: urn:acme:wiki%20sync%20%E2%82%AC
	// ce-specversion: 1.0
	// ce-subject: job-1
	// ce-time: 2025-06-01T09:30:00Z
	// ce-type: dev.kgraph.job.failed.v1
	// {"job_id":"job-1","doc_id":"doc-1","namespace":"default","stage":"extractor","reason":"gave up"}
}
