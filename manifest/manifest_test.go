package manifest

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/chunker"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// sample returns a valid format 1 manifest with every field set.
func sample() *Manifest {
	entries := make([]Entry, 70)
	for i := range entries {
		entries[i] = Entry{ID: chunker.Sum([]byte{byte(i), 1}), Size: int64(1000 + i)}
	}
	m := &Manifest{
		FormatVersion:  FormatList,
		Session:        "default",
		ID:             "20250112T153445.123Z-1a2b3c",
		Time:           time.Date(2025, 1, 12, 15, 34, 45, 123_000_000, time.UTC),
		Reason:         "restored:20250111T080000.000Z-abcdef",
		Initialized:    true,
		NodeCount:      2000,
		BytesTotal:     18_677_758,
		BytesUploaded:  123_456,
		ChunksTotal:    70,
		ChunksUploaded: 3,
		DurationMS:     842,
		GraphSHA256:    chunker.Sum([]byte("graph")).String(),
		Writer:         Writer{Host: "studio-1", Generation: 0},
		RestoredFrom:   "20250111T080000.000Z-abcdef",
	}
	m.ChunkList = ChunkList{Format: ListFormat, Entries: len(entries)}
	for _, c := range EncodeList(entries) {
		m.ChunkList.Chunks = append(m.ChunkList.Chunks, ListChunk{ID: c.ID, Size: int64(len(c.Data))})
	}
	return m
}

func TestGolden(t *testing.T) {
	got, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "manifest-v1.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./manifest -run TestGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode differs from %s (run with -update if on purpose):\n%s", path, got)
	}
	m, err := Decode(want)
	if err != nil {
		t.Fatalf("Decode(golden): %v", err)
	}
	if !reflect.DeepEqual(m, sample()) {
		t.Fatalf("Decode(golden) = %+v, want %+v", m, sample())
	}
}

func TestEncodeNormalizesTime(t *testing.T) {
	m := sample()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip(err)
	}
	m.Time = m.Time.Add(456 * time.Microsecond).In(paris)
	data, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"time": "2025-01-12T15:34:45.123Z"`)) {
		t.Fatalf("time not in UTC milliseconds:\n%s", data)
	}
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(sample().Time) || back.Time.Location() != time.UTC {
		t.Errorf("decoded time %v", back.Time)
	}
}

func TestEncodeEmptyList(t *testing.T) {
	m := sample()
	m.ChunkList = ChunkList{Format: ListFormat}
	data, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"chunks": []`)) {
		t.Errorf("empty chunk list should encode as []:\n%s", data)
	}
	if _, err := Decode(data); err != nil {
		t.Fatal(err)
	}
}

// edit returns the golden JSON with old replaced by new (once).
func edit(t *testing.T, old, new string) []byte {
	t.Helper()
	data, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%q not in the sample manifest", old)
	}
	return bytes.Replace(data, []byte(old), []byte(new), 1)
}

func TestDecodeBad(t *testing.T) {
	listID := sample().ChunkList.Chunks[0].ID.String()
	for _, tc := range []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrInvalid, ""},
		{"not json", []byte("{oops"), ErrInvalid, ""},
		{"array", []byte("[]"), ErrInvalid, ""},
		{"trailing", append(edit(t, "", ""), "{}"...), ErrInvalid, ""},
		{"no version", edit(t, `"format_version": 1,`, ""), ErrInvalid, "no format_version"},
		{"version 0", edit(t, `"format_version": 1`, `"format_version": 0`), ErrInvalid, ""},
		{"version string", edit(t, `"format_version": 1`, `"format_version": "x"`), ErrInvalid, ""},
		{"newer", edit(t, `"format_version": 1`, `"format_version": 3`), ErrNewerFormat, "newer pitr"},
		{"v1 with tree", edit(t, `"format_version": 1,`, `"format_version": 1, "content_sha256": "`+chunker.Sum(nil).String()+`",`), ErrInvalid, "format 1"},
		{"v2 with list", edit(t, `"format_version": 1`, `"format_version": 2`), ErrInvalid, "no tree"},
		{"no id", edit(t, `"id": "20250112T153445.123Z-1a2b3c",`, ""), ErrInvalid, "no id"},
		{"bad id", edit(t, `"id": "20250112T153445.123Z-1a2b3c"`, `"id": "yesterday"`), ErrInvalid, ""},
		{"no time", edit(t, `"time": "2025-01-12T15:34:45.123Z",`, ""), ErrInvalid, "no time"},
		{"bad time", edit(t, `"time": "2025-01-12T15:34:45.123Z"`, `"time": "noon"`), ErrInvalid, ""},
		{"time not id's", edit(t, `"time": "2025-01-12T15:34:45.123Z"`, `"time": "2025-01-12T15:34:46.123Z"`), ErrInvalid, "id's time"},
		{"no session", edit(t, `"session": "default",`, ""), ErrInvalid, "no session"},
		{"bad session", edit(t, `"session": "default"`, `"session": "a/b"`), ErrInvalid, ""},
		{"negative nodes", edit(t, `"node_count": 2000`, `"node_count": -1`), ErrInvalid, "negative node_count"},
		{"negative bytes", edit(t, `"bytes_uploaded": 123456`, `"bytes_uploaded": -5`), ErrInvalid, "negative"},
		{"negative entries", edit(t, `"entries": 70`, `"entries": -70`), ErrInvalid, "negative"},
		{"float count", edit(t, `"node_count": 2000`, `"node_count": 1.5`), ErrInvalid, ""},
		{"bad sha", edit(t, `"graph_sha256": "`, `"graph_sha256": "XYZ`), ErrInvalid, "graph_sha256"},
		{"bad restored_from", edit(t, `"restored_from": "20250111T080000.000Z-abcdef"`, `"restored_from": "x"`), ErrInvalid, ""},
		{"bad list format", edit(t, `"format": "pitr-list-1"`, `"format": "pitr-list-9"`), ErrInvalid, "chunk_list.format"},
		{"bad chunk id", edit(t, listID, "zz"+listID[2:]), ErrInvalid, ""},
		{"short chunk id", edit(t, listID, listID[2:]), ErrInvalid, ""},
		{"entries mismatch", edit(t, `"entries": 70`, `"entries": 0`), ErrInvalid, "entries"},
		{"list size", edit(t, `"size": `, `"size": 1`), ErrInvalid, "size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, %v; want %v", m, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	m, err := Decode(edit(t, `"reason":`, `"future_field": {"x": 1}, "reason":`))
	if err != nil || m.Reason != sample().Reason {
		t.Fatalf("Decode = %v, %v", m, err)
	}
}

func TestEncodeInvalid(t *testing.T) {
	m := sample()
	m.BytesTotal = -1
	if _, err := Encode(m); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Encode(negative) = %v", err)
	}
	m = sample()
	m.FormatVersion = 0
	if _, err := Encode(m); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Encode(version 0) = %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	good, err := Encode(sample())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format_version": 2}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNewerFormat) {
				t.Fatalf("error wraps neither ErrInvalid nor ErrNewerFormat: %v", err)
			}
			return
		}
		// What decodes re-encodes, and decodes to the same manifest.
		again, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		m2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}
