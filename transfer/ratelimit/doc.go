// Package ratelimit paces byte streams for --bwlimit: a token bucket shared by any number of
// Readers and Writers, so parallel uploads together stay under one limit.
//
// Rates are bytes per second, written as a plain number ("65536") or with a unit (ParseRate):
// k, M, G, T and Ki, Mi, Gi, Ti are powers of 1024; kB, MB, GB, TB are powers of 1000; an optional
// trailing "/s" is allowed. Unlike rsync's --bwlimit, a plain number is bytes, not KiB.
//
// Contracts: a Limiter with rate 0 never waits. Reader pays for bytes after reading them, and
// Writer before writing them; both split large buffers into bursts so the pace stays smooth.
// Waiting goes through a Clock (Now and a context-aware Sleep), so tests run with a fake clock
// and cancellation ends a wait at once.
package ratelimit
