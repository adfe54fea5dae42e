// Package pipeline holds the small concurrency parts that the backup sources share: a goroutine
// group that cancels on the first error, a bounded buffer pool, and a reorder buffer that
// releases out-of-order worker results in sequence.
package pipeline
