package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/pitr-dev/pitr/session"
)

// requestError is an error with the HTTP status it answers.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var re *requestError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &re):
		return re.status
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, session.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, session.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, session.ErrFenced), errors.Is(err, session.ErrNotDurable):
		return http.StatusServiceUnavailable
	case errors.Is(err, session.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, session.ErrConflict):
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}

// fail answers err with its status. Unexpected errors are logged, answered
// with a generic 500 and trigger a save (reason internal_error).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	msg := err.Error()
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		msg = fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	}
	if errors.Is(err, session.ErrAdminOnly) {
		msg += s.adminHint
	}
	if status == http.StatusInternalServerError {
		s.log.Error("internal error", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.String("error", msg))
		s.saver.Request(ReasonInternalError)
		msg = "internal error"
	}
	writeError(w, status, msg)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // only our own types get here: a bug
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error: encode response"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// decodeStrict decodes exactly one JSON value from r into v: unknown fields,
// wrong types and trailing data are errors naming the problem (400), and a
// body over its http.MaxBytesReader limit is a *http.MaxBytesError (413).
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("trailing data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
		ce  base64.CorruptInputError
	)
	var re *requestError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &re): // from the body reader (a stalled body)
		return re
	case errors.As(err, &se):
		return badRequest("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("body: expected %s, got %s", jsonKind(te.Type), te.Value)
		}
		return badRequest("field %q: expected %s, got %s", te.Field, jsonKind(te.Type), te.Value)
	case errors.As(err, &ce):
		return badRequest("field \"data\": invalid base64 (standard encoding) at byte %d", int64(ce))
	case errors.Is(err, io.EOF):
		return badRequest("empty body: expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("truncated JSON body")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return badRequest("bad JSON body: %v", err)
	}
}

// jsonKind names a Go type the way a client thinks of the JSON.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	default:
		return "a number"
	}
}
