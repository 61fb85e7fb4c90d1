// Package client is a Go client for the HTTP API of `pitr serve` (see
// docs/api.md): typed requests and answers, bearer authentication, the
// acting user in X-Pitr-User, and the server's {"error": ...} bodies as
// *APIError. Reads (GET) are retried with backoff by go-retryablehttp on
// connection errors, 429 and 5xx; edits and saves (PUT, DELETE, POST) are
// sent once and never retried, since a repeated PUT makes a new version of
// the node (node PUTs are idempotent by content, not by version: sending
// the same node again leaves the same content at a higher version).
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

	"github.com/hashicorp/go-retryablehttp"
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
	// Retries bounds the retries of a read (default 4; negative: none).
	Retries int
}

// Client talks to one pitr server.
type Client struct {
	base  *url.URL
	opts  Options
	reads *retryablehttp.Client // GETs, retried
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
	reads := retryablehttp.NewClient()
	reads.HTTPClient = opts.HTTP
	reads.Logger = nil
	reads.RetryWaitMin, reads.RetryWaitMax = 200*time.Millisecond, 5*time.Second
	reads.RetryMax = 4
	if opts.Retries != 0 {
		reads.RetryMax = max(opts.Retries, 0)
	}
	// The server's error body is the answer: no retryablehttp error wrapper.
	reads.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return &Client{base: u, opts: opts, reads: reads}, nil
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

// SetOwner gives node id to owner (a user name or "COMMON") through
// POST /v1/nodes/{id}/owner and returns the node. Not retried: an edit.
func (c *Client) SetOwner(ctx context.Context, id, owner string) (*Node, error) {
	var n Node
	body := map[string]string{"owner": owner}
	if err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(id)+"/owner", body, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// ListNodes reads every node, without data, sorted by id (GET /v1/nodes).
func (c *Client) ListNodes(ctx context.Context) ([]Node, error) {
	var list []Node
	if err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, &list); err != nil {
		return nil, err
	}
	return list, nil
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
	LastError      *string    `json:"last_error"`
	Fenced         bool       `json:"fenced"`
	SavingSince    *time.Time `json:"saving_since"`
	UnsavedSeconds float64    `json:"unsaved_seconds"`
}

// Session reads the session's state.
func (c *Client) Session(ctx context.Context) (*SessionInfo, error) {
	var in SessionInfo
	if err := c.do(ctx, http.MethodGet, "/v1/session", nil, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// SaveResult is the answer of POST /v1/saves.
type SaveResult struct {
	ID             string    `json:"id"`
	Time           time.Time `json:"time"`
	Reason         string    `json:"reason"`
	NodeCount      int       `json:"node_count"`
	BytesTotal     int64     `json:"bytes_total"`
	BytesUploaded  int64     `json:"bytes_uploaded"`
	ChunksTotal    int       `json:"chunks_total"`
	ChunksUploaded int       `json:"chunks_uploaded"`
	DurationMS     int64     `json:"duration_ms"`
	Unchanged      bool      `json:"unchanged"`
}

// Save asks the server to save now (admin) and returns the save.
func (c *Client) Save(ctx context.Context) (*SaveResult, error) {
	var r SaveResult
	if err := c.do(ctx, http.MethodPost, "/v1/saves", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// SaveSummary is one save as GET /v1/saves (and `pitr saves --json`) list
// it.
type SaveSummary struct {
	ID            string    `json:"id"`
	Time          time.Time `json:"time"`
	Reason        string    `json:"reason"`
	Initialized   bool      `json:"initialized"`
	NodeCount     int       `json:"node_count"`
	BytesTotal    int64     `json:"bytes_total"`
	BytesUploaded int64     `json:"bytes_uploaded"`
}

// ListSaves reads the session's committed saves in the store, oldest
// first (GET /v1/saves).
func (c *Client) ListSaves(ctx context.Context) ([]SaveSummary, error) {
	var saves []SaveSummary
	if err := c.do(ctx, http.MethodGet, "/v1/saves", nil, &saves); err != nil {
		return nil, err
	}
	return saves, nil
}

// GetNode reads node id with its data.
func (c *Client) GetNode(ctx context.Context, id string) (*Node, []byte, error) {
	var n struct {
		Node
		Data []byte `json:"data"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(id), nil, &n); err != nil {
		return nil, nil, err
	}
	return &n.Node, n.Data, nil
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
	send := c.opts.HTTP.Do
	if method == http.MethodGet {
		send = func(r *http.Request) (*http.Response, error) {
			rr, err := retryablehttp.FromRequest(r)
			if err != nil {
				return nil, err
			}
			return c.reads.Do(rr)
		}
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
	resp, err := send(req)
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

// Revert asks for what a node revert changes.
type Revert struct {
	At     string // a time (as pitr restore --at takes it) or "latest"
	Save   string // or a save id
	DryRun bool   // only say what would change
}

// RevertResult is the server's answer to a revert.
type RevertResult struct {
	ID     string `json:"id"`
	Action string `json:"action"` // put, delete or none
	DryRun bool   `json:"dry_run"`
	Save   struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
	} `json:"save"`
	Before *Node `json:"before"`
	After  *Node `json:"after"`
	Size   int   `json:"size"`
}

// RevertNode puts node id back as it was at a past save, as a new edit
// (POST /v1/nodes/{id}/revert). Not retried: a revert is an edit.
func (c *Client) RevertNode(ctx context.Context, id string, r Revert) (*RevertResult, error) {
	path := "/v1/nodes/" + url.PathEscape(id) + "/revert"
	if r.DryRun {
		path += "?dry_run=1"
	}
	body := map[string]string{}
	if r.Save != "" {
		body["save"] = r.Save
	} else {
		body["at"] = r.At
	}
	var out RevertResult
	if err := c.do(ctx, http.MethodPost, path, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// InitSession moves the session from waiting to active (admin) and
// returns the session as it is then. Not retried: a second init is a 409.
func (c *Client) InitSession(ctx context.Context) (*SessionInfo, error) {
	var in SessionInfo
	if err := c.do(ctx, http.MethodPost, "/v1/session/init", nil, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// Healthy reports whether GET /healthz answers 200.
func (c *Client) Healthy(ctx context.Context) bool {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil) == nil
}
