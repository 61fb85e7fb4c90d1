package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Event is one event of the stream: its SSE name (hello, node_put,
// node_deleted, user_joined, user_left, state), its id (the session's
// sequence number; empty for hello) and its JSON data.
type Event struct {
	Type string
	ID   string
	Data json.RawMessage
}

// Stream is an open event stream: the user is online while it is open.
type Stream struct {
	body io.ReadCloser
	r    *bufio.Reader
}

// Events opens GET /v1/events?user=NAME, making user online until Close.
// It is not retried: a client that loses its stream reconnects and
// reloads, as the API says.
func (c *Client) Events(ctx context.Context, user string) (*Stream, error) {
	path := "/v1/events?user=" + url.QueryEscape(user)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.opts.Password != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Password)
	}
	hc := *c.opts.HTTP
	hc.Timeout = 0 // a stream lasts as long as the caller wants
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ae := &APIError{Method: http.MethodGet, Path: path, Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
		var eb struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			ae.Message = eb.Error
		}
		return nil, ae
	}
	return &Stream{body: resp.Body, r: bufio.NewReaderSize(resp.Body, 64<<10)}, nil
}

// maxEventLine bounds one line of the stream (a node_put carries no data).
const maxEventLine = 1 << 20

// Next reads the next event, skipping comments (heartbeats). It returns
// io.EOF when the server ended the stream.
func (s *Stream) Next() (Event, error) {
	var e Event
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if len(line) > maxEventLine {
			return Event{}, fmt.Errorf("event stream: a line of %d bytes", len(line))
		}
		if err != nil {
			if err == io.EOF && line == "" {
				return Event{}, io.EOF
			}
			return Event{}, fmt.Errorf("event stream: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if e.Type == "" && data == nil {
				continue // a comment block ended
			}
			e.Data = json.RawMessage(strings.Join(data, "\n"))
			if !json.Valid(e.Data) {
				return Event{}, fmt.Errorf("event stream: event %q: data is not JSON", e.Type)
			}
			return e, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			e.Type = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "id:"):
			e.ID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}

// Close ends the stream: the user goes offline.
func (s *Stream) Close() error { return s.body.Close() }
