// Package lifecycle owns how a pitr server starts: whether its data dir
// belongs to the configured store and session, waiting for the store, and
// the one decision of which state to serve — the data dir, the store's
// newest committed save, or a rollback written by `pitr restore` — so that
// a committed save is only ever superseded by a state that contains it. A
// local copy that diverged from the store (a fenced or failed-over server
// restarted with unsaved edits) is set aside under <data-dir>/diverged/,
// never committed over newer saves.
//
// The cases, decided by Start from the data dir and the store's newest
// committed save N:
//
//	data dir                                   serves          then
//	empty                                      N (restored)    -
//	empty, --no-restore or no saves            empty session   -
//	any, store has no saves                    the data dir    saved (local_changes)
//	base save = N                              the data dir    saved if it has unsaved edits
//	graph equal to N's                         the data dir    - (a save committed before a crash)
//	written by pitr restore, base ≠ N          the data dir    committed at once (restored:<base>)
//	base ≠ N, no unsaved edits                 N (restored)    -
//	base ≠ N, unsaved edits                    N (restored)    the copy is set aside (diverged/)
//	base ≠ N, unsaved edits, --force-local     the data dir    saved over N (local_changes)
package lifecycle
