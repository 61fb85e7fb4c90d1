// Package e2e holds pitr's end-to-end tests: they build the pitr command
// once, run it as a child process (`pitr serve` and the one-shot commands)
// against a real MinIO server, and check the user-visible contract of
// SPEC.md through the HTTP API (with the Go client of package client, whose
// answers a checking transport also reads raw: see wireCheck), the command
// line, the data directory and the objects in the bucket.
//
// The tests need the MinIO server binary (see package internal/miniotest
// for where it is looked for and how to install it); without it they fail.
// The pitr binary is built with the race detector when the tests are
// (go test -race); PITR_E2E_RACE=1 or 0 forces it on or off.
package e2e
