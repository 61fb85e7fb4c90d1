package storeurl_test

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/store/storeurl"
)

func TestParse(t *testing.T) {
	tests := []struct {
		raw  string
		want storeurl.Location
	}{
		{"file:///abs/path", storeurl.Location{Scheme: "file", Path: "/abs/path"}},
		{"file://rel/path", storeurl.Location{Scheme: "file", Path: "rel/path"}},
		{"file://pitr-data/store", storeurl.Location{Scheme: "file", Path: "pitr-data/store"}},
		{"file://.", storeurl.Location{Scheme: "file", Path: "."}},
		{"file://../up/x", storeurl.Location{Scheme: "file", Path: "../up/x"}},
		{"file:///with%20space/x@y", storeurl.Location{Scheme: "file", Path: "/with space/x@y"}},
		{"file://my dir/x", storeurl.Location{Scheme: "file", Path: "my dir/x"}},
		{"FILE:///x", storeurl.Location{Scheme: "file", Path: "/x"}},
		{"minio://localhost:9000/bucket", storeurl.Location{Scheme: "minio", Endpoint: "localhost:9000", Bucket: "bucket", Secure: true}},
		{"minio://127.0.0.1:9000/bucket/pre/fix?tls=false", storeurl.Location{
			Scheme: "minio", Endpoint: "127.0.0.1:9000", Bucket: "bucket", Prefix: "pre/fix"}},
		{"minio://h:1/b.c-d/p/?tls=true", storeurl.Location{Scheme: "minio", Endpoint: "h:1", Bucket: "b.c-d", Prefix: "p", Secure: true}},
		{"minio://minio.example.com/bkt//", storeurl.Location{Scheme: "minio", Endpoint: "minio.example.com", Bucket: "bkt", Secure: true}},
		{"minio://[::1]:9000/bkt", storeurl.Location{Scheme: "minio", Endpoint: "[::1]:9000", Bucket: "bkt", Secure: true}},
		{"s3://my-bucket", storeurl.Location{Scheme: "s3", Bucket: "my-bucket"}},
		{"s3://my-bucket/", storeurl.Location{Scheme: "s3", Bucket: "my-bucket"}},
		{"s3://my-bucket/team/pitr", storeurl.Location{Scheme: "s3", Bucket: "my-bucket", Prefix: "team/pitr"}},
		{"S3://my-bucket/a%20b", storeurl.Location{Scheme: "s3", Bucket: "my-bucket", Prefix: "a b"}},
	}
	for _, tt := range tests {
		got, err := storeurl.Parse(tt.raw)
		if tt.want.Path != "" {
			tt.want.Path = filepath.FromSlash(tt.want.Path)
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.raw, got, err, tt.want)
			continue
		}
		// The canonical form parses to the same location.
		again, err := storeurl.Parse(got.String())
		if err != nil || again != got {
			t.Errorf("Parse(%q.String() = %q) = %+v, %v; want %+v", tt.raw, got.String(), again, err, got)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", "want scheme://"},
		{"/just/a/path", "want scheme://"},
		{"file:relative", "want scheme://"},
		{"http://host/bucket", `unknown scheme "http"`},
		{"gs://bucket", `unknown scheme "gs"`},
		{"file://", "no directory"},
		{"file:///x?y=1", "no ?options"},
		{"file:///x#frag", "no ?options"},
		{"file:///x%zz", "bad %-escape"},
		{"file:///x%00", "NUL"},
		{"file://a\nb", "control characters"},
		{"minio://", "no host"},
		{"minio://host:9000", "no bucket"},
		{"minio://host:9000/", "no bucket"},
		{"minio://:9000/b", "no host"},
		{"minio://host:/bkt", "empty port"},
		{"minio://host:9000/Bucket", "bad bucket name"},
		{"minio://host:9000/b", "bad bucket name"},
		{"minio://host:9000/bu_ck", "bad bucket name"},
		{"minio://host:9000/a..b", "bad bucket name"},
		{"minio://host:9000/bkt?tls=no", "tls="},
		{"minio://host:9000/bkt?region=x", `unknown option "region"`},
		{"minio://host:9000/bkt?tls=true&tls=false", "unknown option"},
		{"minio://host:9000/bkt/../x", "bad prefix"},
		{"minio://host:9000/bkt/a//b", "bad prefix"},
		{"minio://host:9000/bkt#x", "fragment"},
		{"minio://host:port/bkt", "not a valid URL"},
		{"s3://", "no bucket"},
		{"s3://bucket:9000/x", "not a host:port"},
		{"s3://bucket/x?endpoint=y", "no ?options"},
		{"s3://UPPER", "bad bucket name"},
		{"s3://bucket/a\\b", "bad prefix"},
		{"minio://user:hunter2secret@host:9000/bkt", "credentials"},
		{"s3://key:hunter2secret@bucket/x", "credentials"},
		{"file://user:hunter2secret@host/x", "credentials"},
		{"minio://user:hun/ter2secret@host:9000/bkt", "credentials"},
		{"minio://user:hunter2%zzsecret@host:9000/bkt", "credentials"},
	}
	for _, tt := range tests {
		_, err := storeurl.Parse(tt.raw)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", tt.raw)
			continue
		}
		msg := err.Error()
		if !errors.Is(err, storeurl.ErrBadURL) || !strings.Contains(msg, tt.want) {
			t.Errorf("Parse(%q) error = %q, want ErrBadURL mentioning %q", tt.raw, msg, tt.want)
		}
		if strings.Contains(msg, "hunter2") || strings.Contains(msg, "ter2secret") {
			t.Errorf("Parse(%q) error %q leaks the password", tt.raw, msg)
		}
		if !strings.Contains(tt.raw, "@") && !strings.Contains(msg, strconv.Quote(tt.raw)) {
			t.Errorf("Parse(%q) error %q does not name the URL", tt.raw, msg)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"s3://bucket/x", "s3://bucket/x"},
		{"minio://u:p@host:9000/b", "minio://REDACTED@host:9000/b"},
		{"minio://u:p/q@host:9000/b", "minio://REDACTED@host:9000/b"},
		{"minio://u:p@h@host/b", "minio://REDACTED@host/b"},
		{"u:p@host://x", "REDACTED@host://x"},
		{"no scheme @ all", "REDACTED@ all"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := storeurl.Redact(tt.raw); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

const fuzzSecret = "Sup3rS3cretPw"

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"file:///abs", "file://rel/x", "minio://h:9000/b/p?tls=false", "s3://bucket/p", "s3://",
		"minio://u:p@h/b", "x://", "://", "file://%", "minio://[::1/b", "s3://b/%zz", "minio://h/b?tls",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := storeurl.Parse(raw) // must not panic
		if err == nil {
			if _, err := storeurl.Parse(loc.String()); err != nil {
				t.Errorf("Parse(%q) = %+v, but its String() %q does not parse: %v", raw, loc, loc.String(), err)
			}
		}
		// Put credentials into the URL: they must appear in no error,
		// wherever the fuzzer's text puts them.
		with := "user:" + fuzzSecret + "@" + raw
		if scheme, rest, ok := strings.Cut(raw, "://"); ok {
			with = scheme + "://user:" + fuzzSecret + "@" + rest
		}
		if _, err := storeurl.Parse(with); err == nil {
			t.Errorf("Parse(%q) accepted credentials in the URL", with)
		} else if strings.Contains(err.Error(), fuzzSecret) {
			t.Errorf("Parse(%q) error %q contains the password", with, err)
		}
		if strings.Contains(storeurl.Redact(with), fuzzSecret) {
			t.Errorf("Redact(%q) kept the password", with)
		}
	})
}
