// Package executable finds the file of the running snapferry binary: crontab lines and the
// local.sh stanza name it, deploy copies it to the far side, the PID registry recognizes its
// processes by it, and the tape daemon starts it again.
//
// It imports only the standard library and sits under cron, a leaf, as cron/clock does, so
// every package may use it.
package executable
