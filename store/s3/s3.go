// Package s3 implements store.Store on AWS S3, or any S3-compatible endpoint,
// through aws-sdk-go-v2, in one bucket under an optional key prefix.
//
// Credentials and region come from the standard AWS chain
// (config.LoadDefaultConfig: environment, shared config and credentials
// files, SSO, web identity, container and instance roles); AWS_CA_BUNDLE is
// honoured. A custom endpoint (Config.Endpoint, or AWS_ENDPOINT_URL_S3 /
// AWS_ENDPOINT_URL picked up by the SDK) switches to path-style addressing
// and, when no region is configured, to region us-east-1.
//
// SDK errors are translated at this boundary into the store sentinel errors
// with errors.As on the modelled error types, smithy.APIError codes and, for
// bodiless HEAD responses, the HTTP status. Conditional writes (PutIf) use
// PutObject's IfNoneMatch / IfMatch (S3 conditional writes). The SDK
// retries transient failures itself (standard retryer, AWS_MAX_ATTEMPTS);
// this package adds no retries. Credentials never appear in String() or
// errors.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pitr-dev/pitr/store"
)

// Config says where the store is.
type Config struct {
	// Bucket holds the objects.
	Bucket string
	// Prefix is prepended to every key ("a/b" stores key k as "a/b/k");
	// keys are returned without it.
	Prefix string
	// Endpoint is an optional S3-compatible endpoint URL, e.g.
	// "http://127.0.0.1:9000"; it selects path-style addressing.
	Endpoint string
	// Region overrides the configured region.
	Region string
	// CreateBucket creates a missing bucket in New.
	CreateBucket bool
	// ForcePathStyle addresses the bucket in the path (host/bucket/key)
	// rather than the host name; always so with Endpoint.
	ForcePathStyle bool
	// Write are the encryption and storage class of the objects written.
	Write store.WriteOptions
}

// Store is a store.Store on an S3 bucket. It is safe for concurrent use.
type Store struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	name   string // for String and errors
	write  store.WriteOptions
}

var _ store.Store = (*Store)(nil)

// HTTP client settings: enough idle connections for a parallel saver or
// restorer, and bounds on a stuck connection (a whole request is bounded by
// its context instead, since objects may be large).
const (
	maxIdleConnsPerHost   = 64
	responseHeaderTimeout = time.Minute
	dialTimeout           = 10 * time.Second
)

// New loads the AWS configuration, builds the client and checks the bucket,
// creating it when it is missing and cfg.CreateBucket is set. A bucket that
// is missing and not created (cfg.CreateBucket unset, or the creation
// failed) is an error naming the bucket and the store, wrapping
// store.ErrBucketNotFound, a kind of store.ErrNoStore (and
// store.ErrAccessDenied or store.ErrBadCredentials when that is why).
func New(ctx context.Context, cfg Config) (*Store, error) {
	prefix, err := normalizePrefix(cfg.Prefix)
	s := &Store{bucket: cfg.Bucket, prefix: prefix, write: cfg.Write}
	s.name = describe(cfg.Bucket, prefix, cfg.Endpoint)
	if err := cfg.Write.Validate(); err != nil {
		return nil, fmt.Errorf("s3 store %s: %w", s.name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("s3 store %s: %w", s.name, err)
	}
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("s3 store %s: no bucket", s.name)
	}
	if cfg.Endpoint != "" {
		if u, err := url.Parse(cfg.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("s3 store %s: endpoint must be an http(s) URL", s.name)
		}
	}
	client, err := newClient(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("s3 store %s: %w", s.name, err)
	}
	s.client = client
	opts := client.Options()
	if cfg.Endpoint == "" && opts.BaseEndpoint != nil {
		s.name = describe(cfg.Bucket, prefix, *opts.BaseEndpoint)
	}
	if opts.Region == "" {
		return nil, fmt.Errorf("s3 store %s: no AWS region configured (set AWS_REGION or a region in the AWS config)", s.name)
	}
	// Fail early, and clearly, when the chain finds no credentials.
	if opts.Credentials == nil {
		return nil, fmt.Errorf("s3 store %s: no AWS credentials configured: %w", s.name, store.ErrBadCredentials)
	}
	if _, err := opts.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("s3 store %s: no usable AWS credentials: %w: %w", s.name, store.ErrBadCredentials, err)
	}
	if err := s.ensureBucket(ctx, cfg.CreateBucket); err != nil {
		return nil, err
	}
	return s, nil
}

// newClient builds the S3 client from the default AWS configuration.
func newClient(ctx context.Context, cfg Config) (*s3.Client, error) {
	// A BuildableClient, not a plain *http.Client: LoadDefaultConfig adds
	// AWS_CA_BUNDLE to it, and refuses other client types when it is set.
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
			tr.ResponseHeaderTimeout = responseHeaderTimeout
		})
	loadOpts := []func(*config.LoadOptions) error{config.WithHTTPClient(httpClient)}
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		// The SDK validates a GET's checksum when the object has one, and
		// otherwise logs a DEBUG line to stderr whatever the log level
		// (objects written by minio-go or older SDKs have none).
		o.DisableLogOutputChecksumValidationSkipped = true
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if cfg.ForcePathStyle {
			o.UsePathStyle = true
		}
		if o.BaseEndpoint != nil { // ours, or AWS_ENDPOINT_URL(_S3) via the SDK
			o.UsePathStyle = true
			if o.Region == "" {
				o.Region = "us-east-1"
			}
		}
	}), nil
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

// describe names the store like its URL, "s3://bucket/prefix", adding a
// custom endpoint (without any credentials in it).
func describe(bucket, prefix, endpoint string) string {
	name := "s3://" + bucket
	if prefix != "" {
		name += "/" + strings.TrimSuffix(prefix, "/")
	}
	if endpoint != "" {
		if u, err := url.Parse(endpoint); err == nil {
			u.User = nil
			u.RawQuery, u.Fragment = "", ""
			endpoint = u.String()
		} else {
			endpoint = "(unparsable endpoint)"
		}
		name += " at " + endpoint
	}
	return name
}

func (s *Store) ensureBucket(ctx context.Context, create bool) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if err == nil {
		return nil
	}
	terr := translate(err)
	switch {
	case errors.Is(terr, store.ErrAccessDenied):
		// HEAD responses have no body: ask again with a GET, whose error
		// code tells denied access from rejected credentials.
		_, lerr := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, MaxKeys: aws.Int32(1)})
		if lerr == nil {
			return nil // may list, may not HEAD: good enough
		}
		return fmt.Errorf("check bucket %q of %s: %w", s.bucket, s.name, translate(lerr))
	case !errors.Is(terr, store.ErrNotFound) && !errors.Is(terr, store.ErrBucketNotFound):
		return fmt.Errorf("check bucket %q of %s: %w", s.bucket, s.name, terr)
	case !create:
		return fmt.Errorf("bucket %q does not exist in %s: %w",
			s.bucket, s.name, store.ErrBucketNotFound)
	}
	in := &s3.CreateBucketInput{Bucket: &s.bucket}
	if r := s.client.Options().Region; r != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
	}
	_, err = s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	switch {
	case err == nil, errors.As(err, &owned):
		return nil // created, or created concurrently by us
	case errors.As(err, &exists):
		// Created concurrently: ours if we can use it.
		if _, herr := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); herr == nil {
			return nil
		}
	}
	return fmt.Errorf("bucket %q of %s does not exist and could not be created: %w: %w",
		s.bucket, s.name, store.ErrBucketNotFound, translate(err))
}

// String names the store: "s3://bucket/prefix", plus " at <endpoint>" for a
// custom endpoint. It never holds credentials.
func (s *Store) String() string { return s.name }

func (s *Store) objectKey(key string) *string { return aws.String(s.prefix + key) }

func (s *Store) errorf(op, key string, err error) error {
	return fmt.Errorf("%s %q in %s: %w", op, key, s.name, err)
}

// Put uploads data to key in one PutObject request.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := store.ValidateKey(key); err != nil {
		return s.errorf("put", key, err)
	}
	_, err := s.client.PutObject(ctx, s.putInput(key, data))
	if err != nil {
		return s.errorf("put", key, translate(err))
	}
	return nil
}

// putInput is the PutObject request of data at key, with the configured
// encryption and storage class.
func (s *Store) putInput(key string, data []byte) *s3.PutObjectInput {
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           s.objectKey(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
	}
	if s.write.SSE != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(s.write.SSE)
	}
	if s.write.SSEKMSKeyID != "" {
		in.SSEKMSKeyId = aws.String(s.write.SSEKMSKeyID)
	}
	if c := s.write.ClassFor(key); c != "" {
		in.StorageClass = types.StorageClass(c)
	}
	return in
}

// PutIf uploads data to key in one PutObject request with S3's conditional
// write headers, If-None-Match: * or If-Match: "<etag>"; S3 and MinIO
// check them atomically and answer a lost condition with HTTP 412
// PreconditionFailed, store.ErrPreconditionFailed. If-Match on a missing key
// (404 NoSuchKey) is a lost condition too. S3's 409
// ConditionalRequestConflict (a concurrent conditional write was in
// progress) is returned as it is, a retryable error: the condition was not
// decided.
func (s *Store) PutIf(ctx context.Context, key string, data []byte, cond store.Condition) (string, error) {
	if err := store.ValidateKey(key); err != nil {
		return "", s.errorf("put", key, err)
	}
	op := "put (" + cond.String() + ")"
	if err := cond.Validate(); err != nil {
		return "", s.errorf(op, key, err)
	}
	in := s.putInput(key, data)
	if cond.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(`"` + cond.IfMatch + `"`)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		err = translate(err)
		if !cond.IfNoneMatch && errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("%w: the key does not exist: %w", store.ErrPreconditionFailed, err)
		}
		return "", s.errorf(op, key, err)
	}
	tag := trimETag(aws.ToString(out.ETag))
	if tag == "" {
		return "", s.errorf(op, key, errors.New("the server returned no ETag"))
	}
	return tag, nil
}

// Get downloads the whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	data, _, err := s.GetWithInfo(ctx, key)
	return data, err
}

// GetWithInfo downloads the whole object; the metadata comes from the same
// GetObject response.
func (s *Store) GetWithInfo(ctx context.Context, key string) ([]byte, store.ObjectInfo, error) {
	if err := store.ValidateKey(key); err != nil {
		return nil, store.ObjectInfo{}, s.errorf("get", key, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: s.objectKey(key)})
	if err != nil {
		return nil, store.ObjectInfo{}, s.errorf("get", key, translate(err))
	}
	defer out.Body.Close()
	size := aws.ToInt64(out.ContentLength)
	buf := bytes.NewBuffer(make([]byte, 0, max(size, 0)+bytes.MinRead))
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, store.ObjectInfo{}, s.errorf("get", key, translate(err))
	}
	if out.ContentLength != nil && int64(buf.Len()) != size {
		return nil, store.ObjectInfo{}, s.errorf("get", key, fmt.Errorf("read %d bytes, object has %d: %w", buf.Len(), size, io.ErrUnexpectedEOF))
	}
	return buf.Bytes(), store.ObjectInfo{
		Key:     key,
		Size:    int64(buf.Len()),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    trimETag(aws.ToString(out.ETag)),
	}, nil
}

// GetRange downloads length bytes of the object from byte offset with one
// ranged GetObject (Range: bytes=offset-end). A range starting beyond the
// end of the object is HTTP 416 InvalidRange; one reaching beyond it is
// answered with fewer bytes: both are store.ErrInvalidRange (see
// store.TakeRange).
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	const op = "get range"
	if err := store.ValidateKey(key); err != nil {
		return nil, s.errorf(op, key, err)
	}
	if err := store.ValidateRange(offset, length); err != nil {
		return nil, s.errorf(op, key, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &s.bucket,
		Key:    s.objectKey(key),
		Range:  aws.String(store.RangeHeader(offset, length)),
	})
	if err != nil {
		return nil, s.errorf(op, key, translate(err))
	}
	defer out.Body.Close()
	size := min(max(aws.ToInt64(out.ContentLength), 0), length)
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(out.Body, offset+length)); err != nil {
		return nil, s.errorf(op, key, translate(err))
	}
	data, err := store.TakeRange(buf.Bytes(), aws.ToString(out.ContentRange), offset, length)
	if err != nil {
		return nil, s.errorf(op, key, err)
	}
	return data, nil
}

// Stat returns the object's metadata with a HeadObject request.
func (s *Store) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if err := store.ValidateKey(key); err != nil {
		return store.ObjectInfo{}, s.errorf("stat", key, err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: s.objectKey(key)})
	if err != nil {
		return store.ObjectInfo{}, s.errorf("stat", key, translate(err))
	}
	return store.ObjectInfo{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    trimETag(aws.ToString(out.ETag)),
	}, nil
}

// Delete removes the object; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := store.ValidateKey(key); err != nil {
		return s.errorf("delete", key, err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: s.objectKey(key)})
	if err != nil {
		if terr := translate(err); !errors.Is(terr, store.ErrNotFound) {
			return s.errorf("delete", key, terr)
		}
	}
	return nil
}

// List pages through ListObjectsV2 with store.ListPages.
func (s *Store) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	if err := store.ValidateListOptions(opts); err != nil {
		return fmt.Errorf("list %q in %s: %w", opts.Prefix, s.name, err)
	}
	fetch := func(ctx context.Context, startAfter, token string, pageSize int) (store.Page, error) {
		in := &s3.ListObjectsV2Input{
			Bucket:  &s.bucket,
			Prefix:  aws.String(s.prefix + opts.Prefix),
			MaxKeys: aws.Int32(int32(pageSize)),
		}
		if opts.Delimiter != "" {
			in.Delimiter = aws.String(opts.Delimiter)
		}
		if token != "" {
			in.ContinuationToken = aws.String(token)
		} else if startAfter != "" {
			in.StartAfter = aws.String(s.prefix + startAfter)
		}
		out, err := s.client.ListObjectsV2(ctx, in)
		if err != nil {
			return store.Page{}, fmt.Errorf("list %q in %s: %w", opts.Prefix, s.name, translate(err))
		}
		return s.convert(out), nil
	}
	return store.ListPages(ctx, opts, fetch, fn)
}

func (s *Store) convert(out *s3.ListObjectsV2Output) store.Page {
	page := store.Page{
		Entries:   make([]store.ObjectInfo, 0, len(out.Contents)+len(out.CommonPrefixes)),
		Truncated: aws.ToBool(out.IsTruncated),
		NextToken: aws.ToString(out.NextContinuationToken),
	}
	for _, o := range out.Contents {
		page.Entries = append(page.Entries, store.ObjectInfo{
			Key:     strings.TrimPrefix(aws.ToString(o.Key), s.prefix),
			Size:    aws.ToInt64(o.Size),
			ModTime: aws.ToTime(o.LastModified),
			ETag:    trimETag(aws.ToString(o.ETag)),
		})
	}
	for _, p := range out.CommonPrefixes {
		page.Entries = append(page.Entries, store.ObjectInfo{
			Key:      strings.TrimPrefix(aws.ToString(p.Prefix), s.prefix),
			IsPrefix: true,
		})
	}
	return page
}

func trimETag(etag string) string { return strings.Trim(etag, `"`) }
