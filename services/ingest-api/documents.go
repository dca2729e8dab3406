package ingestapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
)

// SubmitBody is a document submission.
type SubmitBody struct {
	Content   string            `json:"content" minLength:"1" doc:"The document text (UTF-8)."`
	Metadata  map[string]string `json:"metadata,omitempty" maxProperties:"64" doc:"Free-form string metadata kept with the job and the document."`
	DocID     string            `json:"doc_id,omitempty" maxLength:"128" pattern:"^[A-Za-z0-9][A-Za-z0-9_.:-]*$" doc:"Your id for the document; derived from the content when omitted."`
	Namespace string            `json:"namespace,omitempty" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Namespace (tenant or collection); default \"default\"."`
	Force     bool              `json:"force,omitempty" doc:"Re-ingest even if the same content was already ingested in the namespace."`
	// AutoApprove false holds the job in awaiting_approval with a cost
	// estimate until POST /jobs/{id}/approve.
	AutoApprove *bool `json:"auto_approve,omitempty" doc:"false: wait in awaiting_approval with a cost estimate until approved (default true; namespaces configured to require approval always wait)."`
}

// SubmitReply answers a submission.
type SubmitReply struct {
	JobID     string `json:"job_id"`
	DocID     string `json:"doc_id"`
	Namespace string `json:"namespace"`
	Status    string `json:"status" enum:"pending,awaiting_approval,duplicate"`
	Duplicate bool   `json:"duplicate"`
	// ExistingJobID and ExistingJob describe the earlier job with the same
	// content when it is already known at submission.
	ExistingJobID string           `json:"existing_job_id,omitempty" doc:"The earlier job with the same content, when already known."`
	ExistingJob   *JobView         `json:"existing_job,omitempty" doc:"The earlier job's status, timestamps and result."`
	Hint          string           `json:"hint,omitempty"`
	Estimate      *events.Estimate `json:"estimate,omitempty" doc:"Cost estimate, for a job that waits for approval."`
}

// BatchBody submits several documents at once.
type BatchBody struct {
	Documents []SubmitBody `json:"documents" minItems:"1" maxItems:"100"`
}

// BatchReply answers a batch, one reply per document in order.
type BatchReply struct {
	Jobs []SubmitReply `json:"jobs"`
}

// DocumentView is a document and what it holds.
type DocumentView struct {
	DocID         string            `json:"doc_id"`
	Namespace     string            `json:"namespace"`
	Status        string            `json:"status" enum:"ingesting,ready,failed,cancelled,deleting"`
	JobID         string            `json:"job_id" doc:"The job that ingested it."`
	ClientID      string            `json:"client_id,omitempty"`
	ContentSHA256 string            `json:"content_sha256,omitempty"`
	ContentBytes  int               `json:"content_bytes"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Chunks        int               `json:"chunks"`
	Entities      int               `json:"entities"`
	Relations     int               `json:"relations"`
	DeletionJobID string            `json:"deletion_job_id,omitempty"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
}

// DocumentDetail is GET /documents/{id}: the document, its text and its job.
type DocumentDetail struct {
	DocumentView
	Content string   `json:"content,omitempty"`
	Job     *JobView `json:"job,omitempty"`
}

// DocumentList is one page of documents, newest first.
type DocumentList struct {
	Documents  []DocumentView `json:"documents"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// DeleteReply answers a deletion: the deletion job to follow.
type DeleteReply struct {
	JobID     string `json:"job_id"`
	DocID     string `json:"doc_id"`
	Namespace string `json:"namespace"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

type docParams struct {
	ID        string `path:"id" maxLength:"128"`
	Namespace string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Default \"default\"."`
}

func (s *Server) documentRoutes() {
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "submit-document", Method: http.MethodPost, Path: "/api/v1/documents", Tags: []string{"documents"},
		Summary: "Submit a document", DefaultStatus: http.StatusAccepted, MaxBodyBytes: humaBodyLimit(s.cfg.MaxBodyBytes),
	}, RoleWrite), func(ctx context.Context, in *struct {
		ClientID string `header:"X-Client-ID" maxLength:"128"`
		Body     SubmitBody
	}) (*struct{ Body SubmitReply }, error) {
		if err := s.allowNamespace(ctx, nsOrDefault(in.Body.Namespace)); err != nil {
			return nil, err
		}
		r, err := s.submit(ctx, in.Body, in.ClientID)
		if err != nil {
			return nil, err
		}
		return &struct{ Body SubmitReply }{r}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "submit-documents-batch", Method: http.MethodPost, Path: "/api/v1/documents/batch", Tags: []string{"documents"},
		Summary: "Submit 1 to 100 documents", Description: "Every document is checked before any is submitted; a refused document refuses the batch.",
		DefaultStatus: http.StatusAccepted, MaxBodyBytes: humaBodyLimit(s.cfg.MaxBodyBytes),
	}, RoleWrite), func(ctx context.Context, in *struct {
		ClientID string `header:"X-Client-ID" maxLength:"128"`
		Body     BatchBody
	}) (*struct{ Body BatchReply }, error) {
		for i, d := range in.Body.Documents {
			if err := s.allowNamespace(ctx, nsOrDefault(d.Namespace)); err != nil {
				return nil, err
			}
			if strings.TrimSpace(d.Content) == "" {
				return nil, huma.Error422UnprocessableEntity("content is empty", &huma.ErrorDetail{Location: fmt.Sprintf("body.documents[%d].content", i), Message: "must contain text"})
			}
		}
		out := BatchReply{Jobs: make([]SubmitReply, 0, len(in.Body.Documents))}
		for _, d := range in.Body.Documents {
			r, err := s.submit(ctx, d, in.ClientID)
			if err != nil {
				return nil, err
			}
			out.Jobs = append(out.Jobs, r)
		}
		return &struct{ Body BatchReply }{out}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "upload-document", Method: http.MethodPost, Path: uploadPath, Tags: []string{"documents"},
		Summary:       "Upload a document file (multipart/form-data)",
		Description:   "Plain text, Markdown or HTML; HTML is reduced to its text (scripts and styles dropped). The file must be UTF-8.",
		DefaultStatus: http.StatusAccepted, MaxBodyBytes: humaBodyLimit(s.cfg.MaxUploadBytes),
	}, RoleWrite), func(ctx context.Context, in *struct {
		ClientID string `header:"X-Client-ID" maxLength:"128"`
		RawBody  huma.MultipartFormFiles[UploadForm]
	}) (*struct{ Body SubmitReply }, error) {
		body, err := uploadedSubmission(in.RawBody.Data())
		if err != nil {
			return nil, err
		}
		if err := s.allowNamespace(ctx, nsOrDefault(body.Namespace)); err != nil {
			return nil, err
		}
		r, err := s.submit(ctx, body, in.ClientID)
		if err != nil {
			return nil, err
		}
		return &struct{ Body SubmitReply }{r}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "list-documents", Method: http.MethodGet, Path: "/api/v1/documents", Tags: []string{"documents"},
		Summary: "List documents, newest first",
	}, RoleRead), func(ctx context.Context, in *struct {
		Namespace string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Only this namespace (default: every namespace the key may access)."`
		Status    string `query:"status" enum:"ingesting,ready,failed,cancelled,deleting"`
		Limit     int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
		Cursor    string `query:"cursor" maxLength:"512"`
	}) (*struct{ Body DocumentList }, error) {
		out, err := s.listDocuments(ctx, in.Namespace, in.Status, in.Limit, in.Cursor)
		if err != nil {
			return nil, err
		}
		return &struct{ Body DocumentList }{out}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "get-document", Method: http.MethodGet, Path: "/api/v1/documents/{id}", Tags: []string{"documents"},
		Summary: "Get a document: metadata, text, its job and counts", Errors: []int{http.StatusNotFound},
	}, RoleRead), func(ctx context.Context, in *struct {
		ID             string `path:"id" maxLength:"128"`
		Namespace      string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Default \"default\"."`
		WithoutContent bool   `query:"without_content" doc:"Leave the text out."`
	}) (*struct{ Body DocumentDetail }, error) {
		out, err := s.getDocument(ctx, docParams{ID: in.ID, Namespace: in.Namespace}, !in.WithoutContent)
		if err != nil {
			return nil, err
		}
		return &struct{ Body DocumentDetail }{out}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "delete-document", Method: http.MethodDelete, Path: "/api/v1/documents/{id}", Tags: []string{"documents"},
		Summary:       "Delete a document",
		Description:   "Starts a deletion job (202): the document's chunks, its share of every entity and relation description and its vectors go; entities left with no source disappear. No LLM call. 409 while the document is still being ingested.",
		DefaultStatus: http.StatusAccepted, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, RoleWrite), func(ctx context.Context, in *docParams) (*struct{ Body DeleteReply }, error) {
		out, err := s.deleteDocument(ctx, *in)
		if err != nil {
			return nil, err
		}
		return &struct{ Body DeleteReply }{out}, nil
	})
}

func nsOrDefault(ns string) string {
	if ns == "" {
		return events.DefaultNamespace
	}
	return ns
}

// submit stores the text, publishes document.submitted and answers. A
// known duplicate is reported at once with the earlier job; dedup still
// decides from the event.
func (s *Server) submit(ctx context.Context, in SubmitBody, clientHeader string) (SubmitReply, error) {
	if strings.TrimSpace(in.Content) == "" {
		return SubmitReply{}, huma.Error422UnprocessableEntity("content is empty", &huma.ErrorDetail{Location: "body.content", Message: "must contain text"})
	}
	ns := nsOrDefault(in.Namespace)
	hash := events.ContentSHA256(in.Content)
	docID := in.DocID
	if docID == "" {
		docID = "doc_" + hash[:24]
	}
	jobID := newJobID()
	ref := jobstate.ContentRef(jobID)
	if err := s.deps.Documents.Put(ctx, ref, in.Content); err != nil {
		s.deps.Logger.ErrorContext(ctx, "store document text", "err", err, "job_id", jobID)
		return SubmitReply{}, huma.Error503ServiceUnavailable("document store unavailable, retry later")
	}
	approval := in.AutoApprove != nil && !*in.AutoApprove || slices.Contains(s.cfg.ApprovalNamespaces, ns)
	reply := SubmitReply{JobID: jobID, DocID: docID, Namespace: ns, Status: string(jobstate.StatusPending)}
	var estimate *events.Estimate
	if approval {
		estimate = s.cfg.Estimate.estimate(in.Content)
		reply.Status, reply.Estimate = string(jobstate.StatusAwaitingApproval), estimate
	}
	if !in.Force {
		s.knownDuplicate(ctx, ns, hash, &reply)
	}
	client := clientID(ctx, clientHeader)
	e := events.New(events.DerivedID(jobID, string(events.TypeDocumentSubmitted)), Source, events.DocumentSubmitted{
		JobRef:     events.JobRef{JobID: jobID, DocID: docID, Namespace: ns},
		ContentRef: ref, ContentSHA256: hash, ContentBytes: len(in.Content), Metadata: in.Metadata,
		ClientID: client, Force: in.Force, RequireApproval: approval, Estimate: estimate, SubmittedAt: s.now().UTC(),
	}, s.now())
	// The 202 goes out only after the stream has stored the event, so an
	// acknowledged submission survives a restart of any process.
	if err := bus.Publish(ctx, s.deps.Publisher, e); err != nil {
		s.deps.Logger.ErrorContext(ctx, "publish document.submitted", "err", err, "job_id", jobID)
		return SubmitReply{}, huma.Error503ServiceUnavailable("event bus unavailable, retry later")
	}
	s.recent.add(jobID, approval)
	s.deps.Logger.InfoContext(ctx, "document submitted", "job_id", jobID, "doc_id", docID, "namespace", ns,
		"bytes", len(in.Content), "client_id", client, "approval", approval, "duplicate", reply.Duplicate)
	return reply, nil
}

// knownDuplicate fills the reply when the content is already claimed in the
// namespace, with the earlier job's status and result.
func (s *Server) knownDuplicate(ctx context.Context, ns, hash string, reply *SubmitReply) {
	raw, _, err := s.deps.Claims.Get(ctx, jobstate.ClaimKey(ns, hash))
	if err != nil {
		return
	}
	var c jobstate.Claim
	if json.Unmarshal(raw, &c) != nil || c.JobID == "" {
		return
	}
	reply.Duplicate, reply.ExistingJobID, reply.Status = true, c.JobID, string(jobstate.StatusDuplicate)
	reply.Estimate = nil
	reply.Hint = "the same content was already submitted in this namespace; submit again with force=true to ingest it anew"
	if j, _, err := s.readJob(ctx, c.JobID); err == nil {
		v := jobView(j)
		reply.ExistingJob = &v
	}
}

func docView(d jobstate.Document) DocumentView {
	return DocumentView{DocID: d.DocID, Namespace: d.Namespace, Status: d.Status, JobID: d.JobID, ClientID: d.ClientID,
		ContentSHA256: d.ContentSHA256, ContentBytes: d.ContentBytes, Metadata: d.Metadata, Chunks: d.Chunks,
		Entities: d.Entities, Relations: d.Relations, DeletionJobID: d.DeletionJobID,
		CreatedAt: d.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"), UpdatedAt: d.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")}
}

func (s *Server) listDocuments(ctx context.Context, ns, status string, limit int, cursor string) (DocumentList, error) {
	if ns != "" {
		if err := s.allowNamespace(ctx, ns); err != nil {
			return DocumentList{}, err
		}
	}
	after, err := decodeCursor(cursor, func(pos string) bool { _, _, _, ok := jobstate.ParseDocPosition(pos); return ok })
	if err != nil {
		return DocumentList{}, err
	}
	if limit == 0 {
		limit = 50
	}
	p := s.principal(ctx)
	prefixes := indexListings(p, ns, jobstate.DocIndexPrefixAll, jobstate.DocIndexPrefix)
	keep := func(d *jobstate.Document) (DocumentView, bool) {
		if !p.Can(d.Namespace) || status != "" && d.Status != status {
			return DocumentView{}, false
		}
		return docView(*d), true
	}
	docs, next, err := indexPage(ctx, s.deps.Jobs, prefixes, after, limit, s.records.IndexedDocuments, keep, s.deps.Logger)
	if err != nil {
		s.deps.Logger.WarnContext(ctx, "list documents", "err", err)
		return DocumentList{}, huma.Error503ServiceUnavailable("job store unavailable, retry later")
	}
	return DocumentList{Documents: docs, NextCursor: encodeCursor(next)}, nil
}

// documentRecord reads a document the request may see (404 otherwise).
func (s *Server) documentRecord(ctx context.Context, in docParams) (jobstate.Document, uint64, error) {
	ns := nsOrDefault(in.Namespace)
	notFound := huma.Error404NotFound(fmt.Sprintf("no document %q in namespace %q", in.ID, ns))
	if !validDocID(in.ID) || !s.canSee(ctx, ns) {
		return jobstate.Document{}, 0, notFound
	}
	d, rev, err := s.records.Document(ctx, ns, in.ID)
	switch {
	case errors.Is(err, jobstate.ErrNotFound):
		return jobstate.Document{}, 0, notFound
	case errors.Is(err, jobstate.ErrCorrupt):
		s.deps.Logger.WarnContext(ctx, "read document record", "err", err)
		return jobstate.Document{}, 0, huma.Error503ServiceUnavailable("document record unreadable")
	case err != nil:
		s.deps.Logger.WarnContext(ctx, "read document record", "err", err)
		return jobstate.Document{}, 0, huma.Error503ServiceUnavailable("job store unavailable, retry later")
	}
	return d, rev, nil
}

// validDocID matches events.DocIDPattern and its length.
func validDocID(id string) bool {
	if id == "" || len(id) > events.MaxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-' && c != '.' && c != ':') {
			return false
		}
	}
	return true
}

func (s *Server) getDocument(ctx context.Context, in docParams, withContent bool) (DocumentDetail, error) {
	if err := s.allowNamespace(ctx, nsOrDefault(in.Namespace)); err != nil {
		return DocumentDetail{}, err
	}
	d, _, err := s.documentRecord(ctx, in)
	if err != nil {
		return DocumentDetail{}, err
	}
	out := DocumentDetail{DocumentView: docView(d)}
	if j, _, err := s.readJob(ctx, d.JobID); err == nil {
		v := jobView(j)
		out.Job = &v
	}
	if withContent && d.ContentRef != "" {
		text, err := s.deps.Documents.Get(ctx, d.ContentRef)
		switch {
		case err == nil:
			out.Content = text
		case errors.Is(err, kv.ErrNotFound):
		default:
			s.deps.Logger.WarnContext(ctx, "read document text", "err", err, "doc_id", d.DocID)
			return DocumentDetail{}, huma.Error503ServiceUnavailable("document store unavailable, retry later")
		}
	}
	return out, nil
}

func (s *Server) deleteDocument(ctx context.Context, in docParams) (DeleteReply, error) {
	ns := nsOrDefault(in.Namespace)
	if err := s.allowNamespace(ctx, ns); err != nil {
		return DeleteReply{}, err
	}
	d, _, err := s.documentRecord(ctx, in)
	if err != nil {
		return DeleteReply{}, err
	}
	switch d.Status {
	case jobstate.DocDeleting:
		// A deletion that failed may be asked for again; one under way is
		// the answer.
		if j, _, err := s.readJob(ctx, d.DeletionJobID); err != nil || !j.Status.Terminal() {
			return DeleteReply{JobID: d.DeletionJobID, DocID: d.DocID, Namespace: d.Namespace, Status: string(jobstate.StatusProcessing),
				Message: "the document is already being deleted"}, nil
		}
	case jobstate.DocIngesting:
		return DeleteReply{}, huma.Error409Conflict(fmt.Sprintf("document %q is still being ingested by job %s; cancel the job or wait for it to end", d.DocID, d.JobID))
	}
	jobID := newJobID()
	e := events.New(events.DerivedID(jobID, string(events.TypeDocumentDeleted)), Source, events.DocumentDeleted{
		JobRef:      events.JobRef{JobID: jobID, DocID: d.DocID, Namespace: d.Namespace},
		IngestJobID: d.JobID, ContentRef: d.ContentRef, ContentSHA256: d.ContentSHA256, RequestedBy: s.principal(ctx).ClientID,
	}, s.now())
	if err := bus.Publish(ctx, s.deps.Publisher, e); err != nil {
		s.deps.Logger.ErrorContext(ctx, "publish document.deleted", "err", err, "job_id", jobID)
		return DeleteReply{}, huma.Error503ServiceUnavailable("event bus unavailable, retry later")
	}
	s.deps.Logger.InfoContext(ctx, "document deletion requested", "job_id", jobID, "doc_id", d.DocID, "namespace", d.Namespace)
	return DeleteReply{JobID: jobID, DocID: d.DocID, Namespace: d.Namespace, Status: string(jobstate.StatusPending),
		Message: "deletion job started; follow it at /api/v1/jobs/" + jobID}, nil
}
