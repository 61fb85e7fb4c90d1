// Package gc owns `pitr gc`: it deletes the packs (chunks/p/<id>) and the
// chunk objects of format 1 saves (chunks/<id>) that no save of any session
// in the store references, and never one that a save in flight, on this
// host or another, relies on. gc never rewrites data: repacking the live
// chunks of sparse packs is done by the saver, which moves them into the
// pack it is writing anyway (replicate.chooseRewrites), so that saves stay
// immutable and gc only ever deletes whole objects.
//
// # What a run does
//
//  1. Now: T0 := Options.Clock.Now(), taken before anything is read. The
//     cutoff is Options.Grace.Cutoff(T0), T0 − Grace.
//  2. Mark: list the sessions, load every manifest of every session. A
//     format 2 manifest names every pack it references (Manifest.Packs); a
//     format 1 manifest names list chunks, which are read (each distinct one
//     once, its hash checked) for the chunk objects they name. If any
//     manifest (listed, then gone) or list chunk cannot be read or decoded,
//     the run aborts before deleting anything: a reference gc cannot read
//     must never free data.
//  3. Pins: list the sessions again and read each writer claim: the packs
//     a claim pins (claim.Record.Pinned) are marked too. A claim that
//     cannot be read aborts the run.
//  4. Sweep: list chunks/. A pack or chunk object is a candidate when it is
//     not marked and its ModTime is strictly before the cutoff
//     (gcsafety.Expired). Each
//     candidate is Stat-ed again right before its Delete and kept if it has
//     been rewritten since the listing. Other objects under chunks/ are
//     never touched.
//
// # Why a save in flight never loses a pack
//
// Rules (G is the shortest --grace any gc on the store uses; savers are
// configured with it, replicate.Config.GCGrace). G is a gcsafety.Grace,
// the one type that owns the grace and the rules derived from it: its
// default, gcsafety.DefaultGrace (1h), is both gc's and the savers'; (a) is
// Grace.Cutoff and gcsafety.Expired, (c) is Grace.SaveDeadline.
//
//	(a) gc deletes an object only if no manifest it read references it and
//	    its ModTime is before T0 − G, T0 read before the mark.
//	(b) a saver, whose save starts at S, references only packs it uploads
//	    during the save, packs its base save B references, where B is the
//	    session's newest committed save (its own last save, or the save it
//	    was primed with while that is the newest), and foreign packs: those
//	    of another save F (the older save of a rollback, or another
//	    session's newest save for a session's first save). It references a
//	    foreign pack only if, before writing its manifest, it pinned the
//	    pack in its writer claim and then found F's manifest still there.
//	    Within a pack B references it may use any chunk, including one B
//	    itself no longer uses (its chunk index remembers such locations
//	    and counts one only while B names its pack, replicate/index.go):
//	    gc keeps or deletes whole packs, so that is as safe as B's own.
//	(c) a save that is not committed within G/4 of S fails (its context
//	    deadline, Grace.SaveDeadline) and is retried as a new save with a
//	    new S.
//	(d) retention never deletes a session's newest committed save, and only
//	    this saver, holding the writer claim, commits saves of its session.
//
// Claim: if a save commits manifest M, no gc deletes a pack X that M
// references because of a decision it made while M was not yet visible.
//
// Proof. Take a gc run that did not see M: its listing of M's session
// happened before M's Put completed at time c, and after T0. Two cases:
//
//   - X was uploaded by the save, at some p ≥ S. T0 < c ≤ S + G/4 by (c),
//     so T0 − G < S − 3G/4 < p ≤ X's ModTime: X is too young for the run.
//
//   - X is a pack of B. By (d), B stays the newest committed save from
//     before S until M commits, so it is not deleted before c, and the
//     run's listing (before c) lists B. Then either the run reads B and
//     marks X, or B vanished between the listing and the read, and the run
//     aborts.
//
//   - X is a foreign pack of save F, pinned at time p, F found at f > p.
//     If the run read the session's claim after p, X is pinned: marked.
//     Otherwise the run's listing of F's session came before its claim
//     read, before p < f; F existed at f and manifests are never written
//     again once deleted, so F existed at that listing: the run read F and
//     marked X, or aborted. (The claims are read after the manifests, from
//     a second listing of the sessions, so that a session that appeared
//     meanwhile is covered by the same argument.)
//
// A run that did see M marks X. So X survives every run. The G/4 between
// S − 3G/4 and T0 − G absorbs clock skew between saver, gc and store
// (ModTime is the store's clock) and a manifest Put landing a little late.
//
// Unlike format 1, where a saver skipped the upload of any chunk the store
// had, a format 2 saver never relies on an object because it exists, only
// because a save it knows is the newest references it. So the remaining
// case of format 1 (a chunk unused for longer than G, deleted while a saver
// uploads it again) cannot arise for packs: a new pack has a new random
// name. It remains for format 1 chunk objects written by older pitr
// versions still running against the store, which gc narrows to one Stat
// and one Delete by re-Stat-ing right before deleting.
//
// Two gc runs at once only delete unreferenced, old objects; a restore
// reads the packs of a save it loaded, which a gc deletes only once the
// save is pruned (a restore of a save being pruned may fail, and says so).
//
// # Consequences for operators
//
// A gc with --grace below the savers' GCGrace voids the guarantee for saves
// in flight: `pitr gc --grace 0s` is for stores no server is writing to.
// `pitr gc` refuses a grace shorter than servers assume
// (Grace.ShorterThanSavers) while a server holds a writer claim.
// Savers pay nothing for the rule but the G/4 deadline: no chunk is ever
// uploaded again to keep it alive. Space a sparse pack holds beyond its
// live chunks is returned once the last save that references it is pruned.
package gc
