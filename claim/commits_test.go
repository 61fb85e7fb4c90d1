package claim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/faulty"
	"github.com/pitr-dev/pitr/store/mem"
)

// savesOfGenerations returns one manifest per generation entry, a minute
// apart, as writers of those claim generations would have stored them.
func savesOfGenerations(gens ...uint64) []*manifest.Manifest {
	base := time.Date(2025, 1, 12, 15, 0, 0, 0, time.UTC)
	var out []*manifest.Manifest
	for i, g := range gens {
		at := base.Add(time.Duration(i) * time.Minute)
		m := &manifest.Manifest{Session: session, ID: manifest.NewID(at), Time: at, Reason: "interval"}
		m.Writer.Generation = g
		out = append(out, m)
	}
	return out
}

func putClaim(t *testing.T, st store.Store, json string) {
	t.Helper()
	if err := st.Put(t.Context(), claim.Key(session), []byte(json)); err != nil {
		t.Fatal(err)
	}
}

func readCommits(t *testing.T, st store.Store) *claim.Commits {
	t.Helper()
	c, err := claim.ReadCommits(t.Context(), st, session)
	if err != nil {
		t.Fatalf("ReadCommits: %v", err)
	}
	return c
}

func TestCommittedSkipsFencedAndInFlightSaves(t *testing.T) {
	st := stores["file"](t)
	// generation 1 committed ms[0..1]; ms[2] was stored by gen 1 after it
	// lost the claim; generation 2 committed ms[3]; ms[4] is in flight.
	ms := savesOfGenerations(1, 1, 1, 2, 2)
	putClaim(t, st, fmt.Sprintf(`{"format_version": 1, "generation": 2, "last_save": %q,
		"holder": {"id": "b"}, "history": [
			{"generation": 1, "last_save": %q}, {"generation": 2}]}`, ms[3].ID, ms[1].ID))
	c := readCommits(t, st)
	want := []bool{true, true, false, true, false}
	for i, m := range ms {
		if got := c.Committed(m); got != want[i] {
			t.Errorf("save %d (generation %d): committed %v, want %v", i, m.Writer.Generation, got, want[i])
		}
	}
	if got := c.LastCommitted(); got != ms[3].ID {
		t.Errorf("LastCommitted = %q, want %s", got, ms[3].ID)
	}
	// A generation newer than the claim's (the claim was read before a
	// takeover) is accepted. A current generation that committed nothing
	// yet has no committed save; older ones keep theirs.
	newer := savesOfGenerations(3)[0]
	if !c.Committed(newer) {
		t.Error("save of a generation newer than the claim's not accepted")
	}
	fresh := readCommitsOf(t, fmt.Sprintf(`{"generation": 2, "history": [{"generation": 1, "last_save": %q}]}`, ms[1].ID))
	if fresh.Committed(ms[3]) || !fresh.Committed(ms[0]) || fresh.LastCommitted() != "" {
		t.Errorf("a generation that committed nothing: committed %v (want false), older %v (want true), last %q",
			fresh.Committed(ms[3]), fresh.Committed(ms[0]), fresh.LastCommitted())
	}
}

// readCommitsOf stores claim as the session's claim object in a new store
// and reads its commit record.
func readCommitsOf(t *testing.T, claimJSON string) *claim.Commits {
	t.Helper()
	st := stores["file"](t)
	putClaim(t, st, claimJSON)
	return readCommits(t, st)
}

func TestCommitsAcceptEverythingWithoutAClaim(t *testing.T) {
	for name, json := range map[string]string{
		"no claim":         "",
		"unreadable claim": "{not json",
		"generation 0":     `{"generation": 0}`,
	} {
		st := stores["file"](t)
		ms := savesOfGenerations(0, 3, 7)
		if json != "" {
			putClaim(t, st, json)
		}
		c := readCommits(t, st)
		for _, m := range ms {
			if !c.Committed(m) {
				t.Errorf("%s: save of generation %d not accepted", name, m.Writer.Generation)
			}
		}
		if last := c.LastCommitted(); last != "" {
			t.Errorf("%s: LastCommitted = %q, want none", name, last)
		}
	}
	// generations older than the claim's history, and saves without a
	// claim generation, are accepted
	ms := savesOfGenerations(0, 1, 5)
	c := readCommitsOf(t, fmt.Sprintf(`{"generation": 5, "last_save": %q, "history": [{"generation": 5}]}`, ms[2].ID))
	for _, m := range ms {
		if !c.Committed(m) {
			t.Errorf("save of generation %d not accepted", m.Writer.Generation)
		}
	}
	var zero claim.Commits
	if !zero.Committed(ms[1]) || zero.LastCommitted() != "" {
		t.Error("the zero Commits does not accept every manifest")
	}
}

// A claim readable as a record but one Acquire would refuse (no format
// version, no holder) still tells which saves were committed: only the
// generation, last_save and history count.
func TestCommitsReadOnlyTheCommitFields(t *testing.T) {
	ms := savesOfGenerations(4, 4)
	for name, extra := range map[string]string{
		"bare":                   ``,
		"a pin that is no pack":  `, "pinned": ["not-a-pack"]`,
		"a time that is no time": `, "renewed_at": "yesterday", "holder": {"pid": "one"}`,
	} {
		c := readCommitsOf(t, fmt.Sprintf(`{"generation": 4, "last_save": %q%s}`, ms[0].ID, extra))
		if !c.Committed(ms[0]) || c.Committed(ms[1]) {
			t.Errorf("%s: committed %v %v, want true false", name, c.Committed(ms[0]), c.Committed(ms[1]))
		}
	}
}

// A record decoded by hand gives the same commit record as one read from
// the store; a nil record accepts everything.
func TestRecordCommits(t *testing.T) {
	ms := savesOfGenerations(1, 1, 2)
	r := &claim.Record{Generation: 2, LastSave: ms[2].ID,
		History: []claim.Era{{Generation: 1, LastSave: ms[0].ID}, {Generation: 2}}}
	c := r.Commits()
	if !c.Committed(ms[0]) || c.Committed(ms[1]) || !c.Committed(ms[2]) {
		t.Errorf("committed %v %v %v, want true false true", c.Committed(ms[0]), c.Committed(ms[1]), c.Committed(ms[2]))
	}
	var none *claim.Record
	if c := none.Commits(); c != nil || !c.Committed(ms[1]) {
		t.Errorf("nil record: %+v, want nil accepting every manifest", c)
	}
}

// A store that cannot be read is an error naming the session, not a
// claim-less session (which would let fenced saves through).
func TestReadCommitsStoreError(t *testing.T) {
	st := faulty.New(stores["file"](t))
	boom := errors.New("connection reset")
	st.Fail(boom, faulty.Get)
	c, err := claim.ReadCommits(context.Background(), st, session)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), session) || c != nil {
		t.Errorf("ReadCommits on a failing store: %v, %v; want an error wrapping the store's, naming the session", c, err)
	}
}

// ReadCommits never fails on what a claim object holds, and whenever the
// whole claim decodes as a record, it reads the commit record the record
// itself gives.
func FuzzReadCommits(f *testing.F) {
	ms := savesOfGenerations(0, 1, 2, 2, 3)
	f.Add(fmt.Sprintf(`{"generation": 2, "last_save": %q, "history": [{"generation": 1, "last_save": %q}]}`, ms[2].ID, ms[1].ID))
	f.Add(`{"generation": 3, "pinned": ["x"]}`)
	f.Add(`{not json`)
	f.Add(`{"generation": "two"}`)
	f.Fuzz(func(t *testing.T, claimJSON string) {
		st := mem.New(mem.Options{})
		if err := st.Put(context.Background(), claim.Key(session), []byte(claimJSON)); err != nil {
			t.Skip() // not a claim the store takes
		}
		c, err := claim.ReadCommits(context.Background(), st, session)
		if err != nil {
			t.Fatalf("ReadCommits on a readable store: %v", err)
		}
		var r claim.Record
		if json.Unmarshal([]byte(claimJSON), &r) != nil {
			return
		}
		want := r.Commits()
		if c.LastCommitted() != want.LastCommitted() {
			t.Fatalf("LastCommitted %q, the record's %q", c.LastCommitted(), want.LastCommitted())
		}
		for _, m := range ms {
			if c.Committed(m) != want.Committed(m) {
				t.Fatalf("save of generation %d: committed %v, the record says %v", m.Writer.Generation, c.Committed(m), want.Committed(m))
			}
		}
	})
}
