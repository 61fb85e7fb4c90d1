package storetest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// HeaderRecorder is a fake S3 endpoint that answers every request with 200
// and records the headers of each PUT by object path, so that tests can
// check what a store's options put on the wire (encryption, storage class)
// where a real MinIO cannot show it.
type HeaderRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	puts map[string]http.Header
}

// NewHeaderRecorder starts one; it stops with the test.
func NewHeaderRecorder(t *testing.T) *HeaderRecorder {
	t.Helper()
	h := &HeaderRecorder{puts: map[string]http.Header{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPut {
			h.mu.Lock()
			h.puts[r.URL.Path] = r.Header.Clone()
			h.mu.Unlock()
		}
		w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.Close)
	return h
}

// Put returns the headers of the PUT of path ("/bucket/key"), nil if none.
func (h *HeaderRecorder) Put(path string) http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.puts[path]
}
