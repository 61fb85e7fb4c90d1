// Package gc owns `pitr gc`: it deletes the chunk objects (chunks/<id>) that
// no save of any session in the store references, and never one that a save
// in flight, on this host or another, is about to reference.
//
// # What a run does
//
//  1. Now: T0 := Options.Now(), taken before anything is read. The cutoff is
//     T0 − Grace.
//  2. Mark: list the sessions, load every manifest of every session, read
//     every list chunk they name (each distinct list chunk once, its hash
//     checked) and collect every chunk id: list chunks and data chunks. If
//     any manifest or list chunk cannot be read or decoded, the run aborts
//     before deleting anything: a reference gc cannot read must never free
//     data.
//  3. Sweep: list chunks/. A chunk is a candidate when it is not marked and
//     its ModTime is strictly before the cutoff. Each candidate is Stat-ed
//     again right before its Delete and kept if it has been rewritten since
//     the listing (ModTime no longer before the cutoff). Objects under
//     chunks/ whose name is not a chunk id are never touched.
//
// # Why a save in flight never loses a chunk
//
// Rules (G is the shortest --grace any gc on the store uses; savers are
// configured with it, replicate.Config.GCGrace, default 1h like gc's):
//
//	(a) gc deletes a chunk only if no manifest it read references it and its
//	    ModTime is before T0 − G, T0 read before the mark.
//	(b) a saver, whose save starts at S, relies on a chunk that is already in
//	    the store (it skips the upload) only if the chunk's ModTime is at or
//	    after S − G/2: the ModTime a Stat returned during this save, or,
//	    for a chunk of its own last committed save (its "known" set), the
//	    ModTime it recorded then (for a chunk it uploaded, its clock just
//	    before the Put). An older chunk is uploaded again, which refreshes
//	    its ModTime; known entries thus expire G/2 after they were recorded,
//	    and chunks of a save the saver was primed with (restored) start
//	    expired.
//	(c) a save that is not committed within G/4 of S fails (its context
//	    deadline) and is retried as a new save with a new S.
//
// Claim: if a save commits manifest M, no gc deletes a chunk X that M
// references because of a decision it made while M was not yet visible —
// except in the one case named below.
//
// Proof. Take a gc run that did not see M: its listing of M's session (or
// of the sessions) happened before M's Put completed at time c, and that
// listing came after T0, so T0 < c ≤ S + G/4 by (c). For that run to delete
// X, X's ModTime as the run saw it must be before T0 − G < S − 3G/4. Now
// look at how the saver came to rely on X during the save:
//
//   - it uploaded X at some p ≥ S: X's ModTime is then ≥ p > T0 − G, and it
//     only grows (Puts refresh it), so every look by the run after the upload
//     sees a young chunk;
//   - it found X with ModTime m ≥ S − G/2 (Stat, or a fresh known entry):
//     m > S − 3G/4 > T0 − G, and any look by the run, before or after,
//     sees m or a later ModTime: not a candidate.
//
// A run that did see M marks X. So X survives every run. The G/4 left
// between S − G/2 and S − 3G/4 absorbs clock skew between saver, gc and
// store (ModTime is the store's clock) and a manifest Put that lands a
// little after the deadline.
//
// The remaining case: a gc run looks at X (its re-Stat) when X has been
// unreferenced and untouched for longer than G, then a saver that needs X
// again re-uploads it (rule (b) makes it upload, not trust, such a chunk),
// and only then does the run's Delete land. The store interface has no
// conditional delete, so the delete cannot be made to fail; gc narrows the
// window to one Stat and one Delete of that chunk by re-Stat-ing right
// before deleting, where a plain listing-based sweep would leave it open for
// the whole sweep. Only content that came back after more than G unused
// (an undo to an old state, or a session restored from an old save whose
// newer references were pruned) can meet it.
//
// # Consequences for operators
//
// A gc with --grace below the savers' GCGrace voids the guarantee for saves
// in flight: `pitr gc --grace 0s` is for stores no server is writing to.
// Savers pay for the rule with one re-upload of every chunk they keep using
// every G/2 (every 30 minutes by default), and with the first save after a
// restart Stat-ing its chunks instead of trusting them.
package gc
