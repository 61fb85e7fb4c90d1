// Package minio implements store.Store on MinIO (or any S3-compatible
// server) through minio-go, in one bucket under an optional key prefix.
//
// minio-go errors are translated at this boundary into the store sentinel
// errors (NoSuchKey -> store.ErrNotFound, AccessDenied ->
// store.ErrAccessDenied, InvalidAccessKeyId and SignatureDoesNotMatch ->
// store.ErrBadCredentials, PreconditionFailed -> store.ErrPreconditionFailed,
// InvalidRange (HTTP 416) -> store.ErrInvalidRange).
// Conditional writes (PutIf) send If-None-Match: * or If-Match: "<etag>",
// which MinIO checks atomically like S3.
// minio-go retries transient failures itself; this package adds no retries.
// Credentials never appear in String() or errors.
package minio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/pitr-dev/pitr/store"
)

// Config says where the store is and how to reach it.
type Config struct {
	// Endpoint is "host:port", without a scheme.
	Endpoint string
	// Bucket holds the objects.
	Bucket string
	// Prefix is prepended to every key ("a/b" stores key k as "a/b/k");
	// keys are returned without it.
	Prefix string
	// AccessKey and SecretKey are the credentials.
	AccessKey string
	SecretKey string
	// Secure selects HTTPS.
	Secure bool
	// CreateBucket creates a missing bucket in New.
	CreateBucket bool
	// Region is the bucket's region; empty asks the server.
	Region string
	// Write are the encryption and storage class of the objects written.
	Write store.WriteOptions
}

// Store is a store.Store on a MinIO bucket. It is safe for concurrent use.
type Store struct {
	client  *minio.Client
	core    minio.Core
	bucket  string
	prefix  string // "" or ending in "/"
	name    string // for String and errors
	secrets []string
	write   store.WriteOptions
}

var _ store.Store = (*Store)(nil)

// maxIdleConnsPerHost lets a parallel saver or restorer reuse connections.
const maxIdleConnsPerHost = 64

// New connects to the server and checks the bucket, creating it when it is
// missing and cfg.CreateBucket is set. A bucket that is missing and not
// created (cfg.CreateBucket unset, or the creation failed) is an error naming
// the bucket and the store, wrapping store.ErrBucketNotFound, a kind of
// store.ErrNoStore (and store.ErrAccessDenied or store.ErrBadCredentials
// when that is why).
func New(ctx context.Context, cfg Config) (*Store, error) {
	prefix, err := normalizePrefix(cfg.Prefix)
	s := &Store{bucket: cfg.Bucket, prefix: prefix, secrets: []string{cfg.SecretKey}, write: cfg.Write}
	s.name = describe(cfg, prefix)
	if err := cfg.Write.Validate(); err != nil {
		return nil, fmt.Errorf("minio store %s: %w", s.name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("minio store %s: %w", s.name, err)
	}
	switch {
	case cfg.Endpoint == "" || strings.Contains(cfg.Endpoint, "/"):
		return nil, fmt.Errorf("minio store %s: endpoint must be host:port", s.name)
	case cfg.Bucket == "":
		return nil, fmt.Errorf("minio store %s: no bucket", s.name)
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("minio store %s: %w", s.name, err)
	}
	tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
	s.client, err = minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("minio store %s: %w", s.name, s.redact(err))
	}
	s.core = minio.Core{Client: s.client}
	if err := s.ensureBucket(ctx, cfg.CreateBucket); err != nil {
		return nil, err
	}
	return s, nil
}

func normalizePrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if err := store.ValidateKey(p); err != nil {
		return "", fmt.Errorf("bad prefix: %w", err)
	}
	return p + "/", nil
}

// describe names the store the way a store URL does:
// minio://host:port/bucket[/prefix][?tls=false].
func describe(cfg Config, prefix string) string {
	name := "minio://" + cfg.Endpoint + "/" + cfg.Bucket
	if prefix != "" {
		name += "/" + strings.TrimSuffix(prefix, "/")
	}
	if !cfg.Secure {
		name += "?tls=false"
	}
	return name
}

func (s *Store) ensureBucket(ctx context.Context, create bool) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %q of %s: %w", s.bucket, s.name, s.translate(err))
	}
	if exists {
		return nil
	}
	if !create {
		return fmt.Errorf("bucket %q does not exist in %s: %w",
			s.bucket, s.name, store.ErrBucketNotFound)
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{})
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case "BucketAlreadyOwnedByYou":
		return nil // created concurrently, by us
	case "BucketAlreadyExists":
		// Created concurrently: ours if we can use it.
		if ok, _ := s.client.BucketExists(ctx, s.bucket); ok {
			return nil
		}
	}
	return fmt.Errorf("bucket %q of %s does not exist and could not be created: %w: %w",
		s.bucket, s.name, store.ErrBucketNotFound, s.translate(err))
}

// String names the store like its URL, "minio://host:port/bucket/prefix",
// with "?tls=false" for plain HTTP. It never holds credentials.
func (s *Store) String() string { return s.name }

func (s *Store) objectName(key string) string { return s.prefix + key }

// errorf wraps a translated error with the operation and the object's full
// location (store, bucket, prefix and key).
func (s *Store) errorf(op, key string, err error) error {
	return fmt.Errorf("%s %q in %s: %w", op, key, s.name, err)
}

// Put uploads data to key in one request.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := store.ValidateKey(key); err != nil {
		return s.errorf("put", key, err)
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.objectName(key), bytes.NewReader(data), int64(len(data)), s.putOptions(key))
	if err != nil {
		return s.errorf("put", key, s.translate(err))
	}
	return nil
}

// putOptions are the options of a PutObject of key: the configured
// encryption and storage class.
func (s *Store) putOptions(key string) minio.PutObjectOptions {
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true, StorageClass: s.write.ClassFor(key)}
	switch s.write.SSE {
	case "AES256":
		opts.ServerSideEncryption = encrypt.NewSSE()
	case "aws:kms":
		// Validate accepted the key id; NewSSEKMS fails only on a bad context.
		opts.ServerSideEncryption, _ = encrypt.NewSSEKMS(s.write.SSEKMSKeyID, nil)
	}
	return opts
}

// PutIf uploads data to key in one request with an If-None-Match: * or
// If-Match: "<etag>" header (minio-go's SetMatchETagExcept and
// SetMatchETag), which MinIO, like S3, checks under its object lock: a lost
// condition is HTTP 412 PreconditionFailed, store.ErrPreconditionFailed.
// MinIO answers If-Match on a missing key with 404; that too is a lost
// condition.
func (s *Store) PutIf(ctx context.Context, key string, data []byte, cond store.Condition) (string, error) {
	if err := store.ValidateKey(key); err != nil {
		return "", s.errorf("put", key, err)
	}
	op := "put (" + cond.String() + ")"
	if err := cond.Validate(); err != nil {
		return "", s.errorf(op, key, err)
	}
	opts := s.putOptions(key)
	if cond.IfNoneMatch {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(cond.IfMatch)
	}
	info, err := s.client.PutObject(ctx, s.bucket, s.objectName(key), bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		err = s.translate(err)
		if !cond.IfNoneMatch && errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("%w: the key does not exist: %w", store.ErrPreconditionFailed, err)
		}
		return "", s.errorf(op, key, err)
	}
	if info.ETag == "" {
		return "", s.errorf(op, key, errors.New("the server returned no ETag"))
	}
	return trimETag(info.ETag), nil
}

// GetWithInfo downloads the whole object; the metadata comes from the same
// GET response.
func (s *Store) GetWithInfo(ctx context.Context, key string) ([]byte, store.ObjectInfo, error) {
	if err := store.ValidateKey(key); err != nil {
		return nil, store.ObjectInfo{}, s.errorf("get", key, err)
	}
	data, oi, err := s.get(ctx, key)
	if err != nil {
		return nil, store.ObjectInfo{}, err
	}
	return data, store.ObjectInfo{Key: key, Size: int64(len(data)), ModTime: oi.LastModified, ETag: trimETag(oi.ETag)}, nil
}

// Get downloads the whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := store.ValidateKey(key); err != nil {
		return nil, s.errorf("get", key, err)
	}
	data, _, err := s.get(ctx, key)
	return data, err
}

func (s *Store) get(ctx context.Context, key string) ([]byte, minio.ObjectInfo, error) {
	rd, info, _, err := s.core.GetObject(ctx, s.bucket, s.objectName(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, info, s.errorf("get", key, s.translate(err))
	}
	defer rd.Close()
	size := info.Size
	if size < 0 {
		size = 0
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(rd); err != nil {
		return nil, info, s.errorf("get", key, s.translate(err))
	}
	if info.Size >= 0 && int64(buf.Len()) != info.Size {
		return nil, info, s.errorf("get", key, fmt.Errorf("read %d bytes, object has %d: %w", buf.Len(), info.Size, io.ErrUnexpectedEOF))
	}
	return buf.Bytes(), info, nil
}

// GetRange downloads length bytes of the object from byte offset with one
// ranged GET (Range: bytes=offset-end, minio-go's SetRange). A range
// starting beyond the end of the object is HTTP 416 InvalidRange; one
// reaching beyond it is answered with fewer bytes: both are
// store.ErrInvalidRange (see store.TakeRange).
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	const op = "get range"
	if err := store.ValidateKey(key); err != nil {
		return nil, s.errorf(op, key, err)
	}
	if err := store.ValidateRange(offset, length); err != nil {
		return nil, s.errorf(op, key, err)
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(offset, offset+length-1); err != nil {
		return nil, s.errorf(op, key, err)
	}
	rd, info, h, err := s.core.GetObject(ctx, s.bucket, s.objectName(key), opts)
	if err != nil {
		return nil, s.errorf(op, key, s.translate(err))
	}
	defer rd.Close()
	buf := bytes.NewBuffer(make([]byte, 0, min(max(info.Size, 0), length)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(rd, offset+length)); err != nil {
		return nil, s.errorf(op, key, s.translate(err))
	}
	data, err := store.TakeRange(buf.Bytes(), h.Get("Content-Range"), offset, length)
	if err != nil {
		return nil, s.errorf(op, key, err)
	}
	return data, nil
}

// Stat returns the object's metadata with a HEAD request.
func (s *Store) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if err := store.ValidateKey(key); err != nil {
		return store.ObjectInfo{}, s.errorf("stat", key, err)
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.objectName(key), minio.StatObjectOptions{})
	if err != nil {
		return store.ObjectInfo{}, s.errorf("stat", key, s.translate(err))
	}
	return store.ObjectInfo{Key: key, Size: oi.Size, ModTime: oi.LastModified, ETag: trimETag(oi.ETag)}, nil
}

// Delete removes the object; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := store.ValidateKey(key); err != nil {
		return s.errorf("delete", key, err)
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.objectName(key), minio.RemoveObjectOptions{})
	if err != nil {
		if terr := s.translate(err); !errors.Is(terr, store.ErrNotFound) {
			return s.errorf("delete", key, terr)
		}
	}
	return nil
}

func trimETag(etag string) string { return strings.Trim(etag, `"`) }

// translate maps a minio-go error to the store's sentinel errors, keeping
// the original for its message, with any credentials removed.
func (s *Store) translate(err error) error {
	err = s.redact(err)
	var sentinel error
	resp, ok := asErrorResponse(err)
	if !ok {
		return err
	}
	switch resp.Code {
	case "NoSuchKey", "NotFound":
		sentinel = store.ErrNotFound
	case "NoSuchBucket":
		sentinel = store.ErrBucketNotFound
	case "AccessDenied", "AllAccessDisabled", "AccountProblem":
		sentinel = store.ErrAccessDenied
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
		"TokenRefreshRequired":
		sentinel = store.ErrBadCredentials
	case "PreconditionFailed":
		sentinel = store.ErrPreconditionFailed
	case "InvalidRange":
		sentinel = store.ErrInvalidRange
	default:
		switch resp.StatusCode {
		case http.StatusNotFound:
			sentinel = store.ErrNotFound
		case http.StatusForbidden:
			sentinel = store.ErrAccessDenied
		case http.StatusPreconditionFailed:
			sentinel = store.ErrPreconditionFailed
		case http.StatusRequestedRangeNotSatisfiable:
			sentinel = store.ErrInvalidRange
		default:
			return err
		}
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

func asErrorResponse(err error) (minio.ErrorResponse, bool) {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp, true
	}
	var p *minio.ErrorResponse
	if errors.As(err, &p) && p != nil {
		return *p, true
	}
	return resp, false
}

// redact returns err with the secret key, should any layer have put it in
// the message, replaced.
func (s *Store) redact(err error) error {
	msg := err.Error()
	for _, secret := range s.secrets {
		if secret != "" && strings.Contains(msg, secret) {
			return &redactedError{msg: strings.ReplaceAll(msg, secret, "REDACTED"), err: err}
		}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
