// Package replicate is the saver: it decides when to save (an interval after
// a change, a user disconnecting, shutdown, an internal error, on demand),
// takes a snapshot of the session at one instant, cuts it into chunks
// (re-encoding and re-hashing only the nodes that changed, chunker.Planner),
// puts the chunks its base save lacks and the new nodes of the save's chunk
// tree into one pack (moving along the live chunks of sparse packs, see
// chooseRewrites), commits one manifest, and records the save in the local
// data dir (session.json; the graph file only at journal checkpoints).
// Store failures are retried with backoff while the session keeps serving.
package replicate
