package storetest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// HeaderRecorder is a fake S3 endpoint that records the headers of each PUT
// and each GET by object path, so that tests can check what a store's
// options put on the wire (encryption, storage class, ranges) where a real
// MinIO cannot show it. It keeps the body of every PUT and serves it back
// to GETs of the same path, honouring a Range header as S3 does (206 with
// Content-Range, fewer bytes for a range beyond the end, 416 for one
// starting beyond it; http.ServeContent); every other request is answered
// with an empty 200.
type HeaderRecorder struct {
	*httptest.Server
	mu     sync.Mutex
	puts   map[string]http.Header
	gets   map[string]http.Header
	bodies map[string][]byte
}

// recorderModTime is the Last-Modified of the objects a HeaderRecorder
// serves (minio-go requires one).
var recorderModTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// NewHeaderRecorder starts one; it stops with the test.
func NewHeaderRecorder(t *testing.T) *HeaderRecorder {
	t.Helper()
	h := &HeaderRecorder{puts: map[string]http.Header{}, gets: map[string]http.Header{}, bodies: map[string][]byte{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
		h.mu.Lock()
		switch r.Method {
		case http.MethodPut:
			h.puts[r.URL.Path] = r.Header.Clone()
			if r.Header.Get("X-Amz-Decoded-Content-Length") != "" {
				body = decodeAWSChunked(body)
			}
			h.bodies[r.URL.Path] = body
		case http.MethodGet:
			h.gets[r.URL.Path] = r.Header.Clone()
		}
		stored, ok := h.bodies[r.URL.Path]
		h.mu.Unlock()
		if r.Method == http.MethodGet && ok {
			w.Header().Set("Content-Type", "application/octet-stream")
			http.ServeContent(w, r, "", recorderModTime, bytes.NewReader(stored))
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.Close)
	return h
}

// decodeAWSChunked returns the payload of an aws-chunked body (SigV4
// streaming uploads): chunks of "<hex size>[;chunk-signature=…]\r\n<data>\r\n",
// ending with a chunk of size 0 and any trailers. A malformed body comes
// back as it is.
func decodeAWSChunked(body []byte) []byte {
	var out []byte
	rest := body
	for {
		line, after, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			return body
		}
		sizeHex, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(sizeHex), 16, 64)
		if err != nil || n < 0 || int64(len(after)) < n {
			return body
		}
		if n == 0 {
			return out
		}
		out = append(out, after[:n]...)
		rest = bytes.TrimPrefix(after[n:], []byte("\r\n"))
	}
}

// Put returns the headers of the PUT of path ("/bucket/key"), nil if none.
func (h *HeaderRecorder) Put(path string) http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.puts[path]
}

// Get returns the headers of the last GET of path ("/bucket/key"), nil if
// none.
func (h *HeaderRecorder) Get(path string) http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gets[path]
}
