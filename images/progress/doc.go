// Package progress is the small interface through which backup and restore code reports how far
// it has come. Core code (images/disk, images/tree) only calls a Reporter; the CLI decides how to
// render it (an updating line on a TTY, a line every few seconds in cron logs, JSON with --json).
//
// Contract: every Reporter method is safe for concurrent use, because sources report from their
// worker goroutines, and must return quickly (no I/O on the caller's goroutine), because they are
// called on the hot path once per block or file.
package progress
