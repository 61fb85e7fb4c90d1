package catalog

import (
	"context"
	"testing"

	"github.com/pitr-dev/pitr/store/file"
)

// A read with some of a pack's chunks in the cache (kept from an earlier
// read of the save) and others not, when gc repacked the pack in between:
// the uncached read loads the pack's forward record, and a cached chunk
// decoded after that is still decoded from the cache, where it was found.
// (Found by review: it was looked for at its new place and failed as
// corrupt.)
func TestCachedChunkDecodedAfterItsPacksRecordIsRead(t *testing.T) {
	ctx := context.Background()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := saveInPacks(t, st, randomChunks(20), 1)
	p := packsOf(m)[0]
	es, err := Entries(ctx, st, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	refs := []Ref{{ID: es[0].ID, Loc: es[0].Loc}, {ID: es[1].ID, Loc: es[1].Loc}, {ID: es[10].ID, Loc: es[10].Loc}}
	c := newSpans() // an earlier read kept the range holding the first two chunks
	end := es[1].Loc.Offset + es[1].Loc.Length
	body, err := st.GetRange(ctx, "chunks/p/"+p.String(), 0, end)
	if err != nil {
		t.Fatal(err)
	}
	c.put(p, 0, body)
	moveAll(t, st, p, refsIn(t, st, m, p), nil)
	forwarded := make(chan struct{})
	err = readRefs(ctx, st, refs, readOpts{parallel: 4, cache: c}, func(i int, raw []byte, err error) error {
		if err != nil {
			return err
		}
		switch i {
		case 2: // read through the record: it is known now
			close(forwarded)
		case 0: // a cached chunk, decoded only after that
			<-forwarded
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read across a repack: %v", err)
	}
}
