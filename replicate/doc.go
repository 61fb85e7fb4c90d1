// Package replicate is the saver: it decides when to save (an interval after
// a change, a user disconnecting, shutdown, an internal error, on demand),
// takes a snapshot of the session at one instant, cuts it into chunks,
// uploads those the store lacks, commits one manifest, and writes the local
// data dir. Store failures are retried with backoff while the session keeps
// serving.
package replicate
