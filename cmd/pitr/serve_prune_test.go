package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/retention"
	"github.com/pitr-dev/pitr/session"
)

func TestPrunerAppliesPolicyAfterSaves(t *testing.T) {
	_, st, ids := pruneStore(t, 6)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := newPruner(&serveOptions{common: &common{session: "s"}, keep: retention.Policy{Last: 2}, pruneEvery: time.Hour}, st, log)
	saver := replicate.New(session.New(), replicate.Config{Store: st, Session: "s", Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx, saver) }()
	defer func() { cancel(); <-done }()

	if got := leftIDs(t, st); len(got) != 6 {
		t.Fatalf("pruned before any save: %v", got)
	}
	p.saved(replicate.Result{})
	deadline := time.Now().Add(10 * time.Second)
	for len(leftIDs(t, st)) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("policy not applied after a save: %v", leftIDs(t, st))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := leftIDs(t, st); !slices.Equal(got, ids[4:]) {
		t.Fatalf("kept %v, want the newest two %v", got, ids[4:])
	}
}

func TestPrunerOffWithEmptyPolicy(t *testing.T) {
	_, st, _ := pruneStore(t, 3)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := newPruner(&serveOptions{common: &common{session: "s"}, pruneEvery: time.Hour}, st, log)
	p.saved(replicate.Result{})
	p.run(context.Background(), nil) // returns at once: nothing to do
	if got := leftIDs(t, st); len(got) != 3 {
		t.Fatalf("empty policy pruned: %v", got)
	}
}
