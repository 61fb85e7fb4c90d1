package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"golang.org/x/sync/semaphore"
)

// Defaults of the request limits.
const (
	// DefaultBodyReadTimeout is how long a request body may send nothing
	// before the request is ended.
	DefaultBodyReadTimeout = 30 * time.Second
	// inflightRetryAfter is the Retry-After of a request refused because
	// too many request bytes are in flight.
	inflightRetryAfter = 2
)

// DefaultMaxInflightBytes is the in-flight body budget for a largest node
// size of maxNode: two of the largest PUT bodies. Receiving a body costs
// about 2.5 times its size until it is decoded (the JSON decoder's buffer
// and the node data), so two largest uploads stay within 4 × maxNode plus
// the bodies' base64 overhead.
func DefaultMaxInflightBytes(maxNode int64) int64 { return 2 * putBodyLimit(maxNode) }

// limitBodies bounds what request bodies may cost: each request with a body
// reserves its size (its Content-Length, or the largest PUT body when it is
// unknown) from a budget of cfg.MaxInflightBytes for as long as it runs,
// and is refused with 503 and Retry-After when the budget is spent; and a
// body that sends nothing for cfg.BodyReadTimeout ends the request.
func (s *Server) limitBodies(next http.Handler) http.Handler {
	budget := semaphore.NewWeighted(s.cfg.MaxInflightBytes)
	largest := putBodyLimit(s.cfg.MaxNodeBytes)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		n := r.ContentLength
		if n < 0 || n > largest {
			n = largest
		}
		n = min(n, s.cfg.MaxInflightBytes) // one request alone always fits
		if !budget.TryAcquire(n) {
			w.Header().Set("Retry-After", strconv.Itoa(inflightRetryAfter))
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf(
				"too many request bytes in flight (at most %d, --max-inflight-bytes): retry in %d s", s.cfg.MaxInflightBytes, inflightRetryAfter))
			return
		}
		defer budget.Release(n)
		r.Body = &stallTimeoutBody{ReadCloser: r.Body, ctl: http.NewResponseController(w), timeout: s.cfg.BodyReadTimeout}
		next.ServeHTTP(w, r)
	})
}

// stallTimeoutBody moves the connection's read deadline timeout past every
// read: a body that stops arriving fails the read, while a slow but moving
// one is never cut off.
type stallTimeoutBody struct {
	io.ReadCloser
	ctl     *http.ResponseController
	timeout time.Duration
}

func (b *stallTimeoutBody) Read(p []byte) (int, error) {
	_ = b.ctl.SetReadDeadline(clock.Deadline(b.timeout)) // unsupported (tests' recorders): no deadline
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = &requestError{status: http.StatusRequestTimeout,
			msg: fmt.Sprintf("request body stalled: nothing received for %s (--body-read-timeout)", b.timeout)}
	}
	return n, err
}
