package session

import (
	"errors"
	"testing"
)

func TestDecodeRecord(t *testing.T) {
	g := sampleGraph()
	_, recs := EncodeRecords(g)
	for i, rec := range recs {
		n, size, err := DecodeRecord(append(append([]byte{}, rec...), "next"...))
		if err != nil || size != len(rec) {
			t.Fatalf("record %d: %v, size %d of %d", i, err, size, len(rec))
		}
		if isNode := i > 0 && i < len(recs)-1; isNode != (n != nil) || (isNode && n.ID != g.Nodes[i-1].ID) {
			t.Errorf("record %d: node %+v", i, n)
		}
		for cut := range len(rec) {
			if _, _, err := DecodeRecord(rec[:cut]); !errors.Is(err, ErrShortRecord) {
				t.Fatalf("record %d cut at %d: %v, want ErrShortRecord", i, cut, err)
			}
		}
	}
	bad := append([]byte{}, recs[1]...)
	bad[len(bad)-1] ^= 1
	if _, _, err := DecodeRecord(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad CRC: %v", err)
	}
	if _, _, err := DecodeRecord([]byte{'N', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("overlong length: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	_, recs := EncodeRecords(sampleGraph())
	for _, r := range recs {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, size, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrShortRecord) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrShortRecord", err)
			}
			return
		}
		if size > len(b) || (n != nil && ValidID(n.ID) != nil) {
			t.Fatalf("size %d of %d, node %+v", size, len(b), n)
		}
	})
}
