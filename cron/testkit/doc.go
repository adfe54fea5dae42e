// Package testkit holds the helpers every package's tests share: RequireTool and Require (a
// missing tool or facility skips a test on a developer's machine but fails it under CI, where
// .ci/run installs everything), Eventually (wait on a condition with a deadline instead of a
// fixed sleep) Concurrently (n goroutines at once, every failure reported) and SyncBuffer (a buffer
// goroutines write while the test reads it).
//
// It imports only the standard library and sits under cron, a leaf, as cron/clock does, so the
// tests of every layer may import it.
package testkit
