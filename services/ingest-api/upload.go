package ingestapi

// Uploads: multipart files (text, Markdown, HTML) turned into submissions.

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"golang.org/x/net/html"
)

// uploadPath is the multipart upload, routed apart from the JSON submissions.
const uploadPath = "/api/v1/documents/upload"

// UploadForm is a multipart upload.
type UploadForm struct {
	File        huma.FormFile `form:"file" required:"true" contentType:"text/plain,text/markdown,text/html,text/x-markdown,application/octet-stream" doc:"The document: plain text, Markdown or HTML (UTF-8)."`
	Namespace   string        `form:"namespace" required:"false" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$"`
	DocID       string        `form:"doc_id" required:"false" maxLength:"128" pattern:"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"`
	Metadata    string        `form:"metadata" required:"false" maxLength:"16384" doc:"A JSON object of strings."`
	Force       bool          `form:"force" required:"false"`
	AutoApprove string        `form:"auto_approve" required:"false" enum:"true,false" doc:"Default true."`
}

// uploadedSubmission turns an upload into a submission: the file's text
// (HTML reduced to text) and the form's fields.
func uploadedSubmission(f *UploadForm) (SubmitBody, error) {
	if f == nil || !f.File.IsSet {
		return SubmitBody{}, huma.Error422UnprocessableEntity("file is required", &huma.ErrorDetail{Location: "body.file", Message: "required"})
	}
	defer f.File.Close()
	raw, err := io.ReadAll(f.File)
	if err != nil {
		return SubmitBody{}, huma.Error400BadRequest("could not read the uploaded file")
	}
	if !utf8.Valid(raw) {
		return SubmitBody{}, huma.Error422UnprocessableEntity("the file is not valid UTF-8 text", &huma.ErrorDetail{Location: "body.file"})
	}
	text := string(raw)
	if isHTML(f.File.ContentType, f.File.Filename) {
		text = htmlText(raw)
	}
	body := SubmitBody{Content: text, Namespace: f.Namespace, DocID: f.DocID, Force: f.Force}
	if f.AutoApprove != "" {
		v := f.AutoApprove == "true"
		body.AutoApprove = &v
	}
	if f.Metadata != "" {
		if err := json.Unmarshal([]byte(f.Metadata), &body.Metadata); err != nil {
			return SubmitBody{}, huma.Error422UnprocessableEntity("metadata must be a JSON object of strings", &huma.ErrorDetail{Location: "body.metadata", Message: err.Error()})
		}
	}
	if body.Metadata == nil {
		body.Metadata = map[string]string{}
	}
	if _, ok := body.Metadata["filename"]; !ok && f.File.Filename != "" {
		body.Metadata["filename"] = path.Base(f.File.Filename)
	}
	if strings.TrimSpace(body.Content) == "" {
		return SubmitBody{}, huma.Error422UnprocessableEntity("the file holds no text", &huma.ErrorDetail{Location: "body.file", Message: "must contain text"})
	}
	return body, nil
}

func isHTML(contentType, filename string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	ext := strings.ToLower(path.Ext(filename))
	return mt == "text/html" || ext == ".html" || ext == ".htm"
}

// htmlText extracts the visible text of an HTML document: text nodes,
// with block elements as line breaks, without scripts and styles.
func htmlText(raw []byte) string {
	z := html.NewTokenizer(bytes.NewReader(raw))
	var b strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.TrimSpace(collapseBlankLines(b.String()))
		case html.StartTagToken, html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if tag == "script" || tag == "style" || tag == "noscript" || tag == "template" {
				if z.Token().Type == html.StartTagToken {
					skip++
				} else if skip > 0 {
					skip--
				}
				continue
			}
			if blockTags[tag] {
				b.WriteString("\n")
			}
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		}
	}
}

var blockTags = map[string]bool{"p": true, "div": true, "br": true, "li": true, "h1": true, "h2": true, "h3": true, "h4": true,
	"h5": true, "h6": true, "tr": true, "section": true, "article": true, "pre": true, "blockquote": true, "title": true}

func collapseBlankLines(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if strings.TrimSpace(l) == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
