// Package gc owns `pitr gc`: it deletes the packs (chunks/p/<id>) and the
// chunk objects of format 1 saves (chunks/<id>) that no save of any session
// in the store references, and never one that a save in flight, on this
// host or another, relies on. It also repacks: the saver keeps the newest
// save's packs dense by moving the chunks it uses out of sparse packs
// (replicate.chooseRewrites), which leaves the older saves naming the old
// packs, so every byte the saver moved is stored twice until those saves
// are pruned. gc deletes such a pack once a forward record
// (manifest.Forward, chunks/f/<id>) says where each chunk the kept saves
// use from it lives now: in a pack the newest saves name, or, for a chunk
// only older saves use, in a new pack gc writes. Saves stay immutable;
// readers follow the records (catalog.Forwards).
//
// # What a run does
//
//  0. Lease: a run that may change the store takes the store's gc lease
//     (LeaseKey, LeaseTTL), so that no two gcs run at once, and checks it
//     before each step that deletes or moves data. A dry run takes none.
//  1. Now: T0 := Options.Clock.Now(), taken before anything is read. The
//     cutoff is Options.Grace.Cutoff(T0), T0 − Grace.
//  2. Mark: list the sessions; for each, read its newest committed save,
//     then load every manifest of the session. A
//     format 2 manifest names every pack it references (Manifest.Packs); a
//     format 1 manifest names list chunks, which are read (each distinct one
//     once, its hash checked) for the chunk objects they name. If any
//     manifest (listed, then gone) or list chunk cannot be read or decoded,
//     the run aborts before deleting anything: a reference gc cannot read
//     must never free data.
//  3. Pins: list the sessions again and read each writer claim: the packs
//     a claim pins (claim.Record.Pinned) are marked too. A claim that
//     cannot be read aborts the run.
//  4. Forwards: list chunks/. A marked pack that is gone is looked up in
//     its forward record, read directly (not trusted to the listing), and
//     the packs it forwards to are marked, until nothing new is marked; so
//     is a marked pack that is still there but has a record (a run that
//     stopped between writing the record and deleting the pack). A record
//     that cannot be read or decoded aborts the run.
//  5. Repack (see "Repacking" below).
//  6. Sweep: a pack, forward record or chunk object is a candidate when it
//     (for a record: its pack) is not marked and its ModTime is strictly
//     before the cutoff (gcsafety.Expired). Each
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
// A restore reads the packs of a save it loaded, which a gc deletes only
// once the save is pruned (a restore of a save being pruned may fail, and
// says so) or once it has repacked them (below).
//
// # Repacking
//
// Anchored packs are those named by a session's newest committed save or
// by any save newer than it (read in that order: a save committed after
// the read is listed, and bases on one of them), by the save the claim
// last committed (whatever its time: a writer whose clock is behind), and
// those a writer claim pins. A pack is a candidate when it is marked, in the store, not
// anchored, and older than the cutoff. gc walks the trees of every save it
// read (catalog.Walk, each distinct node once) and resolves every chunk
// and tree node they use through forward records to the pack in the store
// that holds it. For a candidate P, the needed chunks are those resolved
// into P; one with a copy in a pack the run keeps (that exists and is not
// being repacked: an anchored one first) is forwarded to it, the others
// are copied into a new pack. P is repacked when more than
// Options.MaxUnused of its bytes are not copied:
// after the copy is uploaded, P's record is written (If-None-Match), then
// P is deleted. An anchored pack that is gone (a rollback named it) may
// be used in full by its writer, so every chunk its record forwards is
// needed. Last, every record of a gone pack that forwards a chunk to a
// pack that is gone too is rewritten to point where the chunk is now (the
// end of the chain), so that a chunk moved by every run stays one record
// away (a reader follows at most catalog.MaxForwards, and gc refuses to
// repack past that).
//
// Why this never breaks a save:
//
//	(e) A save in flight references only packs of its base (anchored), its
//	    own uploads (young: never candidates, as in (a)) and pinned packs
//	    (anchored if pinned before the claims were read; otherwise the
//	    save F they come from was still there after gc listed its session,
//	    as in the proof above, so gc walked F and its record forwards every
//	    chunk of F). Chunks of an anchored pack it uses "stale" (b) are in
//	    a pack gc does not touch.
//	(f) A committed save that names P reads P's chunks through P's record,
//	    which is durable before P is deleted and forwards every chunk any
//	    save gc read uses from P, to a pack that exists when the record is
//	    written. A record is kept (marked) as long as its pack is: the
//	    saves that name P keep the targets marked through it, and a target
//	    Q that is later repacked in turn has its own record, which forwards
//	    what P's record sent to it (needs are resolved through records).
//	    P's record is rewritten to point past Q only after Q's record is
//	    durable, so a reader holding either version finds the chunks; the
//	    old version leads through Q's record, which a later run deletes
//	    (once nothing names or forwards to Q), so a read that spans two
//	    gc runs may fail, as a read of a save being pruned may.
//	(g) A reader that loaded a save before P went reads P's record when it
//	    finds P gone (catalog.Forwards): repacking a kept save's pack never
//	    fails a restore. A reader that knows P has a record from a listing
//	    of chunks/f/ but finds the chunk missing where it leads (P still
//	    there: a stopped run) reads it in P, where the save names it.
//	(h) Only one gc runs at a time (the lease), so a run never deletes a
//	    target of a record another run is writing. A run that stalls past
//	    its lease stops at its next check; one that stopped between a record
//	    and its delete is completed by the next run, which marks the
//	    record's targets (step 4, also for a pack reached only through
//	    another record) and uses the record if it forwards every needed
//	    chunk to a pack in the store. gc versions without repacking
//	    must not run against a store that has forward records: they do not
//	    mark what the records point to.
//	(i) After the sweep, gc leaves one forward bundle, chunks/f/bundle/<id>:
//	    a copy of every record in force it read or wrote, behind an index
//	    that holds each copy's SHA-256 (manifest.BundleIndex). It keeps the
//	    newest bundle if that index matches the records as they are, else
//	    writes a new one, and deletes the others. Nothing gc marks, keeps
//	    or deletes depends on a bundle (gc and verify read the records
//	    themselves). A reader takes a copy only of a record the listing
//	    shows older than the bundle, that is unchanged since the copy, as
//	    long as the store's clock orders writes; when it does not (a gc
//	    run stamped by a clock that was behind), a copy may be stale, and a
//	    chunk missing where it leads is read, with the others like it,
//	    where the save names it, through the records themselves (g). The
//	    next gc run replaces such a bundle whatever the times say.
//
// # Consequences for operators
//
// A gc with --grace below the savers' GCGrace voids the guarantee for saves
// in flight: `pitr gc --grace 0s` is for stores no server is writing to.
// `pitr gc` refuses a grace shorter than servers assume
// (Grace.ShorterThanSavers) while a server holds a writer claim.
// Savers pay nothing for the rule but the G/4 deadline: no chunk is ever
// uploaded again to keep it alive. Space an older save's pack holds beyond
// what the kept saves need elsewhere is returned by repacking, once it is
// more than --max-unused of the pack; the rest once the last save that
// references the pack is pruned.
package gc
