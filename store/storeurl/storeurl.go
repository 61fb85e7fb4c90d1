// Package storeurl turns a store URL (the --store flag, PITR_STORE) into a
// store.Store:
//
//	file:///abs/path           a local directory
//	file://rel/path            a directory relative to the working directory
//	minio://host:port/bucket[/prefix][?tls=false]
//	                           MinIO through minio-go; credentials from
//	                           MINIO_ROOT_USER/MINIO_ROOT_PASSWORD, else
//	                           AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
//	s3://bucket[/prefix]       S3 through aws-sdk-go-v2 and the standard AWS
//	                           credential chain; Options.S3Endpoint (else
//	                           AWS_ENDPOINT_URL_S3) for another endpoint
//
// Parse is the pure half (no environment, no network), so it is table- and
// fuzz-tested. Credentials in a URL are refused, and every error names the
// URL with any userinfo redacted.
package storeurl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
	"github.com/pitr-dev/pitr/store/minio"
	"github.com/pitr-dev/pitr/store/s3"
)

// Schemes.
const (
	File  = "file"
	MinIO = "minio"
	S3    = "s3"
)

// ErrBadURL is wrapped by every error about the form of a store URL.
var ErrBadURL = errors.New("bad store URL")

// Options are settings that come from flags next to the URL.
type Options struct {
	// S3Endpoint is the endpoint URL of an S3-compatible service for s3://
	// stores (--s3-endpoint); empty leaves it to AWS_ENDPOINT_URL_S3 and
	// the SDK.
	S3Endpoint string
	// CreateBucket creates a missing store: the bucket of a MinIO or S3
	// store, the directory of a file store. Only pitr serve sets it; without
	// it Open creates nothing and a missing store is an error wrapping
	// store.ErrNoStore that names it.
	CreateBucket bool
	// Write are the encryption and storage class of written objects
	// (minio:// and s3://; ignored by a file store).
	Write store.WriteOptions
	// ForcePathStyle addresses s3:// buckets path-style.
	ForcePathStyle bool
}

// Location is a parsed store URL.
type Location struct {
	// Scheme is File, MinIO or S3.
	Scheme string
	// Path is the directory of a file store, as written (relative paths
	// are relative to the working directory).
	Path string
	// Endpoint is the "host[:port]" of a MinIO store.
	Endpoint string
	// Bucket and Prefix locate MinIO and S3 stores; Prefix has no leading
	// or trailing "/".
	Bucket string
	Prefix string
	// Secure is false for a MinIO store with ?tls=false.
	Secure bool
}

// String renders the location as a canonical store URL.
func (l Location) String() string {
	switch l.Scheme {
	case File:
		return "file://" + filepath.ToSlash(l.Path)
	case MinIO, S3:
		u := l.Scheme + "://"
		if l.Scheme == MinIO {
			u += l.Endpoint + "/"
		}
		u += l.Bucket
		if l.Prefix != "" {
			u += "/" + l.Prefix
		}
		if l.Scheme == MinIO && !l.Secure {
			u += "?tls=false"
		}
		return u
	}
	return l.Scheme + "://?"
}

// Open parses rawURL and opens the store it names. A missing bucket, or a
// file store's missing directory, is created when opts.CreateBucket is set
// (and the credentials allow it); otherwise it is an error wrapping
// store.ErrNoStore.
func Open(ctx context.Context, rawURL string, opts Options) (store.Store, error) {
	st, err := open(ctx, rawURL, opts)
	if err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		hint := "add ?tls=false to the minio:// URL"
		if strings.HasPrefix(rawURL, S3+"://") {
			hint = "give --s3-endpoint an http:// URL"
		}
		return nil, fmt.Errorf("%w (the endpoint speaks plain HTTP, not HTTPS: %s)", err, hint)
	}
	return st, err
}

func open(ctx context.Context, rawURL string, opts Options) (store.Store, error) {
	loc, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch loc.Scheme {
	case File:
		if opts.CreateBucket {
			return file.New(loc.Path)
		}
		return file.Open(loc.Path)
	case MinIO:
		access, secret, err := minioCredentials()
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", Redact(rawURL), err)
		}
		return minio.New(ctx, minio.Config{
			Endpoint: loc.Endpoint, Bucket: loc.Bucket, Prefix: loc.Prefix,
			AccessKey: access, SecretKey: secret,
			Secure: loc.Secure, CreateBucket: opts.CreateBucket, Write: opts.Write,
		})
	default:
		return s3.New(ctx, s3.Config{
			Bucket: loc.Bucket, Prefix: loc.Prefix,
			Endpoint: opts.S3Endpoint, CreateBucket: opts.CreateBucket, Write: opts.Write, ForcePathStyle: opts.ForcePathStyle,
		})
	}
}

// minioCredentials reads the credentials of a minio:// store from the
// environment.
func minioCredentials() (access, secret string, err error) {
	for _, pair := range [][2]string{
		{"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"},
		{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
	} {
		access, secret = os.Getenv(pair[0]), os.Getenv(pair[1])
		if access != "" && secret != "" {
			return access, secret, nil
		}
	}
	return "", "", fmt.Errorf("no credentials: set MINIO_ROOT_USER and MINIO_ROOT_PASSWORD, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: %w",
		store.ErrBadCredentials)
}

// Parse checks rawURL and splits it into a Location. It reads no
// environment and touches no network.
func Parse(rawURL string) (Location, error) {
	loc, err := parse(rawURL)
	if err != nil {
		return Location{}, fmt.Errorf("%w %q: %w", ErrBadURL, Redact(rawURL), err)
	}
	return loc, nil
}

var schemeSyntax = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// parse returns errors that quote nothing of rawURL that could hold a
// password: URLs with "@" (but file URLs with "@" past the first "/",
// whose errors quote nothing) are refused before any part is quoted.
func parse(rawURL string) (Location, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok || !schemeSyntax.MatchString(scheme) {
		return Location{}, errors.New("want scheme://..., with scheme file, minio or s3")
	}
	scheme = strings.ToLower(scheme)
	if scheme != File && scheme != MinIO && scheme != S3 {
		return Location{}, fmt.Errorf("unknown scheme %q (want file, minio or s3)", scheme)
	}
	if strings.ContainsFunc(rawURL, unicode.IsControl) {
		return Location{}, errors.New("contains control characters")
	}
	if scheme == File {
		return parseFile(rest)
	}
	u, err := url.Parse(scheme + "://" + rest)
	switch {
	case strings.Contains(rest, "@"):
		return Location{}, errCredentials
	case err != nil:
		return Location{}, errors.New("not a valid URL")
	case u.Fragment != "" || strings.Contains(rest, "#"):
		return Location{}, errors.New("unexpected #fragment")
	case scheme == MinIO:
		return parseMinIO(u)
	default:
		return parseS3(u)
	}
}

var errCredentials = errors.New(`credentials ("user:password@") in the URL are not accepted; set them in the environment`)

// parseFile takes the rest of a file URL as a path, percent-decoded:
// "/abs/path" from file:///abs/path, "rel/path" from file://rel/path.
func parseFile(rest string) (Location, error) {
	first, _, _ := strings.Cut(rest, "/")
	switch {
	case strings.Contains(first, "@"):
		return Location{}, errCredentials
	case strings.ContainsAny(rest, "?#"):
		return Location{}, errors.New(`file URLs take no ?options or #fragment (write "?" as %3F, "#" as %23)`)
	}
	p, err := url.PathUnescape(rest)
	switch {
	case err != nil:
		return Location{}, errors.New("bad %-escape")
	case p == "":
		return Location{}, errors.New("no directory (want file:///abs/path or file://rel/path)")
	case strings.ContainsRune(p, 0):
		return Location{}, errors.New("contains a NUL byte")
	}
	return Location{Scheme: File, Path: filepath.FromSlash(p)}, nil
}

func parseMinIO(u *url.URL) (Location, error) {
	if u.Host == "" || u.Hostname() == "" {
		return Location{}, errors.New("no host (want minio://host:port/bucket[/prefix])")
	}
	if port := u.Port(); port == "" && strings.HasSuffix(u.Host, ":") {
		return Location{}, errors.New("empty port")
	}
	loc := Location{Scheme: MinIO, Endpoint: u.Host, Secure: true}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Location{}, errors.New("bad ?options")
	}
	for k, v := range q {
		if k != "tls" || len(v) != 1 {
			return Location{}, fmt.Errorf("unknown option %q (only tls=true|false)", k)
		}
		switch v[0] {
		case "true":
		case "false":
			loc.Secure = false
		default:
			return Location{}, fmt.Errorf("tls=%q: want true or false", v[0])
		}
	}
	loc.Bucket, loc.Prefix, err = bucketAndPrefix(strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		return Location{}, err
	}
	return loc, nil
}

func parseS3(u *url.URL) (Location, error) {
	if u.RawQuery != "" {
		return Location{}, errors.New("s3 URLs take no ?options (use --s3-endpoint and the AWS environment)")
	}
	if u.Port() != "" || strings.Contains(u.Host, ":") {
		return Location{}, errors.New("an s3 URL names a bucket, not a host:port (use --s3-endpoint for the endpoint)")
	}
	bucket, prefix, err := bucketAndPrefix(u.Host + u.Path)
	if err != nil {
		return Location{}, err
	}
	return Location{Scheme: S3, Bucket: bucket, Prefix: prefix}, nil
}

// bucketName follows the S3 rules: 3-63 lowercase letters, digits, dots and
// hyphens, starting and ending with a letter or digit.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func bucketAndPrefix(p string) (bucket, prefix string, err error) {
	bucket, prefix, _ = strings.Cut(p, "/")
	if bucket == "" {
		return "", "", errors.New("no bucket")
	}
	if !bucketName.MatchString(bucket) || strings.Contains(bucket, "..") {
		return "", "", fmt.Errorf("bad bucket name %q (3-63 lowercase letters, digits, dots, hyphens)", bucket)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := store.ValidateKey(prefix); err != nil {
			return "", "", fmt.Errorf("bad prefix %q", prefix)
		}
	}
	return bucket, prefix, nil
}

// Redact returns rawURL with everything between "scheme://" (or the start,
// without a valid scheme) and the last "@" replaced by "REDACTED": the
// userinfo of a URL, however malformed, and maybe more. It is for messages
// and logs.
func Redact(rawURL string) string {
	start := 0
	if scheme, _, ok := strings.Cut(rawURL, "://"); ok && schemeSyntax.MatchString(scheme) {
		start = len(scheme) + 3
	}
	at := strings.LastIndexByte(rawURL[start:], '@')
	if at < 0 {
		return rawURL
	}
	return rawURL[:start] + "REDACTED" + rawURL[start+at:]
}

// Identity names the store rawURL points at, for telling whether a data dir
// came from it: the canonical URL with a file store's path made absolute
// and without an S3 endpoint (the same bucket reached another way is the
// same store). It matches the String of the opened store up to that
// endpoint, which SameStore ignores.
func Identity(rawURL string) (string, error) {
	loc, err := Parse(rawURL)
	if err != nil {
		return "", err
	}
	if loc.Scheme == File {
		abs, err := filepath.Abs(loc.Path)
		if err != nil {
			return "", fmt.Errorf("store %s: %w", Redact(rawURL), err)
		}
		loc.Path = abs
	}
	return loc.String(), nil
}

// SameStore reports whether two store names (a store's String, as data
// dirs keep it, or an Identity) name the same store: an S3 endpoint (" at
// URL") is ignored.
func SameStore(a, b string) bool {
	a, _, _ = strings.Cut(a, " at ")
	b, _, _ = strings.Cut(b, " at ")
	return a == b
}
