package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/mem"
)

// countingStore counts List calls of the store it wraps.
type countingStore struct {
	store.Store
	lists atomic.Int64
}

func (c *countingStore) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	c.lists.Add(1)
	return c.Store.List(ctx, opts, fn)
}

func newStore(t *testing.T) *countingStore {
	t.Helper()
	return &countingStore{Store: mem.New(mem.Options{})}
}

// sampleManifest returns a valid format 1 manifest of save
// 20250112T153445.123Z-1a2b3c of session "default", with a chunk list of
// 70 entries in one list chunk.
func sampleManifest() *manifest.Manifest {
	entries := make([]manifest.Entry, 70)
	for i := range entries {
		entries[i] = manifest.Entry{ID: chunker.Sum([]byte{byte(i), 1}), Size: int64(1000 + i)}
	}
	m := &manifest.Manifest{
		FormatVersion:  manifest.FormatList,
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
		Writer:         manifest.Writer{Host: "studio-1"},
		RestoredFrom:   "20250111T080000.000Z-abcdef",
	}
	m.ChunkList = manifest.ChunkList{Format: manifest.ListFormat, Entries: len(entries)}
	for _, c := range manifest.EncodeList(entries) {
		m.ChunkList.Chunks = append(m.ChunkList.Chunks, manifest.ListChunk{ID: c.ID, Size: int64(len(c.Data))})
	}
	return m
}

// saveAt stores a manifest of session taken at at.
func saveAt(t *testing.T, st store.Store, session string, at time.Time) *manifest.Manifest {
	t.Helper()
	m := sampleManifest()
	m.Session, m.ID, m.Time = session, manifest.NewID(at), at
	m.Reason = "interval"
	if err := Put(context.Background(), st, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPutLoad(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	at := time.Date(2025, 1, 12, 15, 34, 45, 123_456_789, time.UTC)
	m := saveAt(t, st, "default", at)
	if !m.Time.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("Put did not normalise the time: %v", m.Time)
	}
	got, err := Load(ctx, st, "default", m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID || !got.Time.Equal(m.Time) || got.NodeCount != m.NodeCount {
		t.Fatalf("Load = %+v", got)
	}
	_, err = Load(ctx, st, "default", manifest.NewID(at))
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "sessions/default/saves/") {
		t.Fatalf("Load(missing) = %v, want ErrNotFound naming the key", err)
	}
	// A manifest stored under another session's key is refused.
	key, _ := manifest.Key("other", m.ID)
	data, _ := manifest.Encode(m)
	if err := st.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, st, "other", m.ID); !errors.Is(err, manifest.ErrInvalid) {
		t.Fatalf("Load(wrong session) = %v", err)
	}
	// Put refuses an invalid manifest.
	bad := sampleManifest()
	bad.NodeCount = -1
	if err := Put(ctx, st, bad); !errors.Is(err, manifest.ErrInvalid) {
		t.Fatalf("Put(invalid) = %v", err)
	}
	if err := Delete(ctx, st, "default", m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, st, "default", m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load after Delete = %v", err)
	}
}

func TestNewestAndAt(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if _, err := Newest(ctx, st, "s"); !errors.Is(err, manifest.ErrNoSaves) {
		t.Fatalf("Newest(empty) = %v", err)
	}
	if _, err := At(ctx, st, "s", time.Now()); !errors.Is(err, manifest.ErrNoSaves) || !errors.Is(err, manifest.ErrNoneBefore) {
		t.Fatalf("At(empty) = %v", err)
	}
	base := time.Date(2025, 1, 12, 15, 0, 0, 0, time.UTC)
	var saves []*manifest.Manifest
	for _, d := range []time.Duration{0, time.Millisecond, 30 * time.Second, time.Minute, time.Hour} {
		saves = append(saves, saveAt(t, st, "s", base.Add(d)))
	}
	saveAt(t, st, "s2", base.Add(2*time.Hour)) // another session's newer save
	// A foreign object among the manifests is skipped.
	if err := st.Put(ctx, manifest.SavesPrefix("s")+"000-notes.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}

	n, err := Newest(ctx, st, "s")
	if err != nil || n.ID != saves[4].ID {
		t.Fatalf("Newest = %v, %v; want %s", n, err, saves[4].ID)
	}
	for _, tc := range []struct {
		at   time.Time
		want int
	}{
		{base, 0},
		{base.Add(999 * time.Microsecond), 0},
		{base.Add(time.Millisecond), 1},
		{base.Add(29 * time.Second), 1},
		{base.Add(30 * time.Second), 2},
		{base.Add(59 * time.Minute), 3},
		{base.Add(time.Hour), 4},
		{base.Add(1000 * time.Hour), 4},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 4},
		{time.Date(50000, 1, 1, 0, 0, 0, 0, time.UTC), 4},
	} {
		st.lists.Store(0)
		m, err := At(ctx, st, "s", tc.at)
		if err != nil {
			t.Fatalf("At(%v): %v", tc.at, err)
		}
		if m.ID != saves[tc.want].ID {
			t.Errorf("At(%v) = %s, want %s", tc.at, m.ID, saves[tc.want].ID)
		}
		if got := st.lists.Load(); got != 1 {
			t.Errorf("At(%v) made %d List calls, want 1", tc.at, got)
		}
	}
	for _, before := range []time.Time{base.Add(-time.Millisecond), time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)} {
		_, err = At(ctx, st, "s", before)
		if !errors.Is(err, manifest.ErrNoneBefore) || errors.Is(err, manifest.ErrNoSaves) ||
			!strings.Contains(err.Error(), saves[0].ID) || !strings.Contains(err.Error(), "2025-01-12T15:00:00.000Z") {
			t.Fatalf("At(before the first) = %v, want ErrNoneBefore naming %s and its time", err, saves[0].ID)
		}
	}
	if _, err := At(ctx, st, "bad/name", base); !errors.Is(err, manifest.ErrBadSession) {
		t.Fatalf("At(bad session) = %v", err)
	}
}

func TestListAndSessions(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if ms, err := List(ctx, st, "s"); err != nil || len(ms) != 0 {
		t.Fatalf("List(empty) = %v, %v", ms, err)
	}
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 40 {
		ids = append(ids, saveAt(t, st, "s", base.Add(time.Duration(i)*time.Minute)).ID)
	}
	saveAt(t, st, "b-session", base)
	if err := st.Put(ctx, "sessions/lease-only/lease.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	ms, err := List(ctx, st, "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(ids) {
		t.Fatalf("List: %d saves, want %d", len(ms), len(ids))
	}
	for i, m := range ms {
		if m.ID != ids[i] {
			t.Fatalf("List[%d] = %s, want %s (oldest first)", i, m.ID, ids[i])
		}
	}
	refs, err := Refs(ctx, st, "s")
	if err != nil || len(refs) != 40 || refs[0].ID != ids[0] || !refs[39].Time.Equal(base.Add(39*time.Minute)) {
		t.Fatalf("Refs = %d refs, %v", len(refs), err)
	}
	names, err := Sessions(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names); got != "[b-session lease-only s]" {
		t.Fatalf("Sessions = %s", got)
	}

	// A corrupt manifest makes List fail, naming its key.
	key, _ := manifest.Key("s", ids[7])
	if err := st.Put(ctx, key, []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := List(ctx, st, "s"); !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), key) {
		t.Fatalf("List(corrupt) = %v, want ErrInvalid naming %s", err, key)
	}
}

func TestListCanceled(t *testing.T) {
	st := newStore(t)
	for i := range 5 {
		saveAt(t, st, "s", time.Date(2025, 1, 1, 0, i, 0, 0, time.UTC))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := List(ctx, st, "s"); !errors.Is(err, context.Canceled) {
		t.Fatalf("List(canceled) = %v", err)
	}
}
