package retention_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/retention"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/counting"
	"github.com/pitr-dev/pitr/store/faulty"
	"github.com/pitr-dev/pitr/store/file"
)

func newFileStore(t *testing.T) *file.Store {
	t.Helper()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// putSaves stores a manifest (with an empty chunk list: prune reads keys
// only) for each time, and returns the ids, oldest first.
func putSaves(t *testing.T, st store.Store, session string, times ...time.Time) []string {
	t.Helper()
	var ids []string
	for _, at := range times {
		m := &manifest.Manifest{
			FormatVersion: manifest.FormatList, Session: session, ID: manifest.NewID(at), Time: at,
			Reason: "interval", ChunkList: manifest.ChunkList{Format: manifest.ListFormat},
		}
		if err := catalog.Put(context.Background(), st, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	slices.SortFunc(ids, func(a, b string) int {
		ta, _ := manifest.IDTime(a)
		tb, _ := manifest.IDTime(b)
		return ta.Compare(tb)
	})
	return ids
}

// hourly returns n times an hour apart, the last at 2025-01-12 15:00 UTC.
func hourly(n int) []time.Time {
	end := time.Date(2025, 1, 12, 15, 0, 0, 0, time.UTC)
	out := make([]time.Time, n)
	for i := range n {
		out[i] = end.Add(-time.Duration(n-1-i) * time.Hour)
	}
	return out
}

func refIDs(t *testing.T, st store.Store, session string) []string {
	t.Helper()
	refs, err := catalog.Refs(context.Background(), st, session)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range refs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestPruneDryRunDeletesNothing(t *testing.T) {
	ctx := context.Background()
	st := newFileStore(t)
	ids := putSaves(t, st, "s", hourly(10)...)
	res, err := retention.Prune(ctx, st, "s", retention.Policy{Last: 3}, time.UTC, true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.Kept != 3 || res.Removed != 7 || res.Deleted != 0 || len(res.Decisions) != 10 {
		t.Fatalf("result %+v", res)
	}
	if got := refIDs(t, st, "s"); !slices.Equal(got, ids) {
		t.Fatalf("dry run deleted saves: left %v", got)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	st := counting.New(newFileStore(t))
	ids := putSaves(t, st, "s", hourly(20)...)
	other := putSaves(t, st, "other", hourly(5)...)
	st.Reset()

	res, err := retention.Prune(ctx, st, "s", retention.Policy{Last: 3, Daily: 2}, time.UTC, false)
	if err != nil {
		t.Fatal(err)
	}
	// Cost: one listing, one read of the writer claim and one DELETE per
	// removed save, no manifest read.
	if c := st.Snapshot(); c.Lists != 1 || c.Deletes != 16 || c.Gets != 1 || c.Puts != 0 {
		t.Fatalf("store requests %+v, want 1 list, 1 get and 16 deletes", c)
	}
	// Last 3 (13:00–15:00 on the 12th) and the newest of 2025-01-11 (23:00).
	wantKept := []string{ids[3], ids[17], ids[18], ids[19]}
	if res.Kept != 4 || res.Removed != 16 || res.Deleted != 16 {
		t.Fatalf("result kept %d removed %d deleted %d", res.Kept, res.Removed, res.Deleted)
	}
	if got := refIDs(t, st, "s"); !slices.Equal(got, wantKept) {
		t.Fatalf("left %v, want %v", got, wantKept)
	}
	var removed []string
	for _, d := range res.Decisions {
		if !d.Keep {
			removed = append(removed, d.ID)
		}
	}
	for _, id := range removed {
		if slices.Contains(wantKept, id) {
			t.Fatalf("removed a kept save %s", id)
		}
	}
	if newest := res.Decisions[len(res.Decisions)-1]; newest.ID != ids[19] || !newest.Keep {
		t.Fatalf("newest decision %+v", newest)
	}
	if got := refIDs(t, st, "other"); !slices.Equal(got, other) {
		t.Fatalf("another session's saves changed: %v", got)
	}

	// Again: nothing to do.
	st.Reset()
	res, err = retention.Prune(ctx, st, "s", retention.Policy{Last: 3, Daily: 2}, time.UTC, false)
	if err != nil || res.Kept != 4 || res.Removed != 0 || res.Deleted != 0 {
		t.Fatalf("second prune: %+v, %v", res, err)
	}
	if c := st.Snapshot(); c.Deletes != 0 {
		t.Fatalf("second prune deleted %d", c.Deletes)
	}
}

func TestPruneKeepsNewest(t *testing.T) {
	ctx := context.Background()
	st := newFileStore(t)
	ids := putSaves(t, st, "s", hourly(6)...)
	// Nothing is within 1ms of the newest but the newest itself.
	if _, err := retention.Prune(ctx, st, "s", retention.Policy{Within: time.Millisecond}, nil, false); err != nil {
		t.Fatal(err)
	}
	if got := refIDs(t, st, "s"); !slices.Equal(got, ids[5:]) {
		t.Fatalf("left %v, want the newest %s", got, ids[5])
	}
}

func TestPruneRefusesBadPolicy(t *testing.T) {
	ctx := context.Background()
	st := newFileStore(t)
	ids := putSaves(t, st, "s", hourly(4)...)
	for _, c := range []struct {
		p    retention.Policy
		want error
	}{
		{retention.Policy{}, retention.ErrNoPolicy},
		{retention.Policy{Last: -1}, retention.ErrBadPolicy},
	} {
		_, err := retention.Prune(ctx, st, "s", c.p, time.UTC, false)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), `session "s"`) {
			t.Errorf("Prune(%+v) = %v, want %v", c.p, err, c.want)
		}
	}
	if got := refIDs(t, st, "s"); !slices.Equal(got, ids) {
		t.Fatalf("a refused prune deleted saves: left %v", got)
	}
}

func TestPruneEmptySession(t *testing.T) {
	res, err := retention.Prune(context.Background(), newFileStore(t), "s", retention.Default(), time.UTC, false)
	if err != nil || len(res.Decisions) != 0 || res.Kept != 0 || res.Removed != 0 {
		t.Fatalf("Prune(empty) = %+v, %v", res, err)
	}
	if _, err := retention.Prune(context.Background(), newFileStore(t), "bad/name", retention.Default(), time.UTC, false); !errors.Is(err, manifest.ErrBadSession) {
		t.Fatalf("Prune(bad session) = %v", err)
	}
}

func TestPruneDeleteFailure(t *testing.T) {
	ctx := context.Background()
	inner := newFileStore(t)
	ids := putSaves(t, inner, "s", hourly(30)...)
	st := faulty.New(inner)
	boom := errors.New("boom")
	st.Inject(faulty.Rule{Err: boom, Ops: []faulty.Op{faulty.Delete}, Skip: 5, Times: 1})
	res, err := retention.Prune(ctx, st, "s", retention.Policy{Last: 1}, time.UTC, false)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "sessions/s/saves/") {
		t.Fatalf("Prune = %v, want the delete error naming the manifest", err)
	}
	if res.Removed != 29 || res.Deleted >= 29 || res.Deleted < 5 {
		t.Fatalf("result removed %d deleted %d", res.Removed, res.Deleted)
	}
	if left := refIDs(t, inner, "s"); len(left) != 30-res.Deleted || left[len(left)-1] != ids[29] {
		t.Fatalf("left %d saves after deleting %d", len(left), res.Deleted)
	}
	// A second run finishes the job.
	res, err = retention.Prune(ctx, st, "s", retention.Policy{Last: 1}, time.UTC, false)
	if err != nil {
		t.Fatal(err)
	}
	if left := refIDs(t, inner, "s"); !slices.Equal(left, ids[29:]) {
		t.Fatalf("left %v after the second prune", left)
	}
}

func TestPruneCanceled(t *testing.T) {
	st := newFileStore(t)
	putSaves(t, st, "s", hourly(5)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := retention.Prune(ctx, st, "s", retention.Policy{Last: 1}, time.UTC, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prune(canceled) = %v", err)
	}
}

// The newest save the writer claim committed survives any policy, even when
// newer manifests (in flight, or stored by a fenced writer) are listed.
func TestPruneKeepsNewestCommitted(t *testing.T) {
	ctx := context.Background()
	st := newFileStore(t)
	ids := putSaves(t, st, "s", hourly(6)...)
	claim := fmt.Sprintf(`{"format_version": 1, "generation": 2, "last_save": %q, "holder": {"id": "x"}}`, ids[3])
	if err := st.Put(ctx, manifest.ClaimKey("s"), []byte(claim)); err != nil {
		t.Fatal(err)
	}
	res, err := retention.Prune(ctx, st, "s", retention.Policy{Last: 1}, time.UTC, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := refIDs(t, st, "s"); !slices.Equal(got, []string{ids[3], ids[5]}) {
		t.Fatalf("left %v, want the newest committed %s and the newest listed %s", got, ids[3], ids[5])
	}
	for _, d := range res.Decisions {
		if d.ID == ids[3] && !slices.Contains(d.Reasons, "newest committed") {
			t.Fatalf("reasons %v", d.Reasons)
		}
	}
}
