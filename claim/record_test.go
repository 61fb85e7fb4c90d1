package claim

import (
	"bytes"
	"testing"
	"time"
)

func TestDecodeRecordRejectsBadInput(t *testing.T) {
	good := next(nil, "s", Holder{Host: "h", PID: 1, ID: "abc"}, HowNew, time.Unix(0, 0), time.Minute)
	b, err := good.encode()
	if err != nil {
		t.Fatal(err)
	}
	if r, err := decode(b); err != nil || r.Generation != 1 || r.Holder.ID != "abc" {
		t.Fatalf("good record: %+v %v", r, err)
	}
	bad := map[string]string{
		"empty":          ``,
		"not json":       `claim`,
		"truncated":      string(b[:len(b)/2]),
		"array":          `[]`,
		"newer format":   `{"format_version": 99, "generation": 1, "holder": {"id": "x"}}`,
		"no format":      `{"generation": 1, "holder": {"id": "x"}}`,
		"generation 0":   `{"format_version": 1, "generation": 0, "holder": {"id": "x"}}`,
		"no holder id":   `{"format_version": 1, "generation": 3, "holder": {"host": "h"}}`,
		"negative ttl":   `{"format_version": 1, "generation": 3, "holder": {"id": "x"}, "ttl_ms": -5}`,
		"huge ttl":       `{"format_version": 1, "generation": 3, "holder": {"id": "x"}, "ttl_ms": 9300000000000000}`,
		"wrong type":     `{"format_version": "1", "generation": 3, "holder": {"id": "x"}}`,
		"negative gen":   `{"format_version": 1, "generation": -1, "holder": {"id": "x"}}`,
		"history object": `{"format_version": 1, "generation": 1, "holder": {"id": "x"}, "history": {}}`,
	}
	for name, in := range bad {
		if r, err := decode([]byte(in)); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, r)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	good := next(nil, "s", Holder{Host: "h", PID: 1, ID: "abc"}, HowNew, time.Unix(0, 0), time.Minute)
	b, _ := good.encode()
	f.Add(b)
	f.Add([]byte(`{"format_version": 1, "generation": 2, "holder": {"id": "x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decode(data)
		if err != nil {
			return
		}
		if r.Generation == 0 || r.Holder.ID == "" || r.TTLMS < 0 || r.TTL(time.Second) <= 0 {
			t.Fatalf("decoded an invalid record: %+v", r)
		}
		again, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decode(again); err != nil && !bytes.Equal(again, data) {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
	})
}
