package fakellm

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/kgraph-dev/kgraph/libs/hashembed"
)

// handleEmbeddings answers POST /v1/embeddings with hashed vectors.
func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req embeddingRequest
	if !s.decode(w, r, &req) {
		return
	}
	if len(req.Input) == 0 {
		s.badRequest(w, "input: want a string or a non-empty array of strings")
		return
	}
	dim := s.cfg.EmbedDim
	if req.Dimensions != 0 {
		dim = req.Dimensions
	}
	if dim < 1 || dim > maxEmbedDim {
		s.badRequest(w, fmt.Sprintf("dimensions %d: want 1..%d", dim, maxEmbedDim))
		return
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		s.badRequest(w, fmt.Sprintf("encoding_format %q: want float or base64", req.EncodingFormat))
		return
	}

	call := s.calls.Add(1) - 1
	s.stats.call(kindEmbeddings)
	s.stats.update(func(st *Stats) { st.EmbeddingInputs += int64(len(req.Input)) })
	release, ok := s.admit(w, r, s.faults.decide(call))
	if !ok {
		return
	}
	defer release()

	vectors, err := hashembed.New(dim).Embed(r.Context(), req.Input)
	if err != nil {
		s.stats.update(func(st *Stats) { st.ClientGone++ })
		return
	}
	resp := embeddingResponse{Object: "list", Data: make([]embeddingItem, len(vectors)), Model: req.Model}
	if resp.Model == "" {
		resp.Model = s.cfg.EmbedModel
	}
	tokens := 0
	for i, v := range vectors {
		tokens += estimateTokens(req.Input[i])
		item := embeddingItem{Object: "embedding", Index: i, Embedding: v}
		if req.EncodingFormat == "base64" {
			item.Embedding = encodeBase64(v)
		}
		resp.Data[i] = item
	}
	resp.Usage = embeddingUsage{PromptTokens: tokens, TotalTokens: tokens}
	s.stats.served(newUsage(tokens, 0))
	writeJSON(w, http.StatusOK, resp)
}

// encodeBase64 is OpenAI's base64 embedding format: little-endian float32s.
func encodeBase64(v []float32) string {
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(buf)
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, modelList{Object: "list", Data: []modelInfo{
		{ID: s.cfg.Model, Object: "model", OwnedBy: "fakellm"},
		{ID: s.cfg.EmbedModel, Object: "model", OwnedBy: "fakellm"},
	}})
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// decode reads a JSON request body, answering 400 when it cannot.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, maxRequestBytes)
	if err := json.NewDecoder(body).Decode(v); err != nil {
		s.badRequest(w, fmt.Sprintf("parse request body: %v", err))
		return false
	}
	return true
}

func (s *Server) badRequest(w http.ResponseWriter, msg string) {
	s.stats.update(func(st *Stats) { st.BadRequests++ })
	writeError(w, http.StatusBadRequest, "invalid_request_error", "", msg)
}

// writeError writes OpenAI's error shape; an empty code is written as null.
func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	body := apiErrorBody{Message: msg, Type: typ}
	if code != "" {
		body.Code = &code
	}
	writeJSON(w, status, apiError{Error: body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// A write error means the client is gone; there is no one to tell.
	_ = enc.Encode(v)
}
