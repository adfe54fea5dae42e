package main

import (
	"fmt"
	"time"

	"github.com/snapferry/snapferry/appliance/notify"
	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/replica"
)

// backupItem is the outcome for one source (an image, a folder set, a VM).
type backupItem struct {
	Source   string        `json:"source"`
	Kind     string        `json:"kind"`
	Mode     string        `json:"mode,omitempty"`
	Snapshot string        `json:"snapshot,omitempty"`
	Stats    repo.Stats    `json:"stats"`
	Duration time.Duration `json:"duration_ns"`
	Warnings []string      `json:"warnings,omitempty"`
	Error    string        `json:"error,omitempty"`
	// Replica is what a replica set sent (replica only).
	Replica *replica.Stats `json:"replica,omitempty"`
}

type backupResult struct {
	items  []backupItem
	events jobEvents
}

// notices are the run's events for hooks.
func (r *backupResult) notices() []notify.Notice {
	if r == nil {
		return nil
	}
	return r.events.notices()
}

func (r *backupResult) list() []backupItem {
	if r == nil {
		return nil
	}
	return r.items
}

// outcome is the run's error class: every source failed is a failure (exit 1), some failed or
// incomplete is partial (exit 3).
func (r *backupResult) outcome() error {
	failed := 0
	for _, it := range r.items {
		if it.Error != "" {
			failed++
		}
	}
	if failed == len(r.items) && failed > 0 {
		return fmt.Errorf("all %d sources failed (see above)", failed)
	}
	return exitcode.Partialf("%d of %s were not backed up completely (see above)", r.partialCount(), plural(len(r.items), "source"))
}

func (r *backupResult) partial() bool { return r.partialCount() > 0 }

func (r *backupResult) partialCount() int {
	n := 0
	for _, it := range r.items {
		if it.Error != "" || len(it.Warnings) > 0 {
			n++
		}
	}
	return n
}

func (a *app) printBackupResult(res *backupResult) {
	if a.jsonOut {
		a.printJSON(map[string]any{"event": "summary", "items": orEmpty(res.items)})
		return
	}
	for _, it := range res.items {
		if it.Error != "" {
			fmt.Fprintf(a.stdout, "%s %s: FAILED: %s\n", it.Kind, it.Source, it.Error)
			continue
		}
		s := it.Stats
		fmt.Fprintf(a.stdout, "%s %s: snapshot %s, read %s, new %s (stored %s compressed), %d new / %d reused blobs, %s\n",
			it.Kind, it.Source, shortID(it.Snapshot), humanBytes(s.BytesRead), humanBytes(s.BytesAdded),
			humanBytes(s.BytesStored), s.BlobsNew, s.BlobsReused, it.Duration.Truncate(time.Millisecond))
		if s.BlocksCached+s.BlocksPatched > 0 {
			fmt.Fprintf(a.stdout, "  blocks: %d unchanged by their fingerprints (not rehashed), %d stored as patches\n",
				s.BlocksCached, s.BlocksPatched)
		}
		if s.FilesNew+s.FilesChanged+s.FilesUnchanged > 0 {
			fmt.Fprintf(a.stdout, "  files: %d new, %d changed, %d unchanged\n", s.FilesNew, s.FilesChanged, s.FilesUnchanged)
		}
		for _, w := range it.Warnings {
			fmt.Fprintf(a.stdout, "  warning: %s\n", w)
		}
	}
}

func shortID(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// orEmpty is s, or an empty list for nil: JSON output has [] where there is nothing, never null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
