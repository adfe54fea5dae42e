// Package nbdtest holds test helpers for code that serves or reads NBD exports: PairReader
// proves that reads reach an export concurrently.
package nbdtest
