// Package clock is the one time source of the packages that wait (cron, pidmgr,
// transfer/ratelimit), so each can be tested with a fake clock. It imports nothing of snapferry
// and sits under cron, a leaf, so any package may import it.
package clock
