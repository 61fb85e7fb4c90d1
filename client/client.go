// Package client is a Go client for the HTTP API of `pitr serve` (see
// docs/api.md): typed requests and answers, bearer authentication, the
// acting user in X-Pitr-User, and the server's {"error": ...} bodies as
// *APIError. It covers the calls the pitr commands make of a running
// server; edits (PUT, DELETE) are sent once and never retried, since a
// repeated PUT makes a new version of the node.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Options configure a Client.
type Options struct {
	// Password is sent as "Authorization: Bearer <password>" (the admin or
	// the server password); empty sends none.
	Password string
	// User is sent in X-Pitr-User: whose ownership rules apply to edits.
	User string
	// HTTP is the client to use; one with a 2-minute timeout when nil.
	HTTP *http.Client
}

// Client talks to one pitr server.
type Client struct {
	base *url.URL
	opts Options
}

// APIError is a non-2xx answer of the server.
type APIError struct {
	Method, Path string
	Status       int
	Message      string // the server's "error" field, or the body
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// New returns a client of the server at baseURL (http or https).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://host:port or https://host:port", baseURL)
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{Timeout: 2 * time.Minute}
	}
	return &Client{base: u, opts: opts}, nil
}

// NodeInput is the body of a node PUT.
type NodeInput struct {
	Type  string   `json:"type"`
	Owner string   `json:"owner,omitempty"`
	Deps  []string `json:"deps"`
	Data  []byte   `json:"data"` // base64 in JSON
}

// Node is a node as the server describes it (without its data).
type Node struct {
	ID      string   `json:"id"`
	Type    string   `json:"type"`
	Owner   string   `json:"owner"`
	Deps    []string `json:"deps"`
	Version uint64   `json:"version"`
}

// PutNode creates or replaces node id.
func (c *Client) PutNode(ctx context.Context, id string, in NodeInput) (*Node, error) {
	if in.Deps == nil {
		in.Deps = []string{}
	}
	var n Node
	if err := c.do(ctx, http.MethodPut, "/v1/nodes/"+url.PathEscape(id), in, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// DeleteNode removes node id.
func (c *Client) DeleteNode(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/nodes/"+url.PathEscape(id), nil, nil)
}

// SessionInfo is GET /v1/session.
type SessionInfo struct {
	Session   string   `json:"session"`
	State     string   `json:"state"`
	NodeCount int      `json:"node_count"`
	Users     []string `json:"users"`
	LastSave  *struct {
		ID     string    `json:"id"`
		Time   time.Time `json:"time"`
		Reason string    `json:"reason"`
	} `json:"last_save"`
	LastError   *string    `json:"last_error"`
	Fenced      bool       `json:"fenced"`
	SavingSince *time.Time `json:"saving_since"`
}

// Session reads the session's state.
func (c *Client) Session(ctx context.Context) (*SessionInfo, error) {
	var in SessionInfo
	if err := c.do(ctx, http.MethodGet, "/v1/session", nil, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// IsNotFound reports whether err is a 404 of the server.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.opts.Password != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Password)
	}
	if c.opts.User != "" {
		req.Header.Set("X-Pitr-User", c.opts.User)
	}
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Method: method, Path: path, Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
		var eb struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			ae.Message = eb.Error
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
