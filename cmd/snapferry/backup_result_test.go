package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/repo"
)

// The summary line of a disk backup shows the blocks the fingerprint cache vouched for and those
// stored as patches.
func TestBackupSummaryBlocksLine(t *testing.T) {
	var out bytes.Buffer
	a := &app{stdout: &out}
	a.printBackupResult(&backupResult{items: []backupItem{
		{Source: "/srv/a.img", Kind: "image", Stats: repo.Stats{BlocksCached: 1513, BlocksPatched: 260}},
		{Source: "/srv/b.img", Kind: "image", Stats: repo.Stats{BlobsNew: 3}},
	}})
	lines := strings.Split(out.String(), "\n")
	if len(lines) != 4 || lines[1] != "  blocks: 1513 unchanged by their fingerprints (not rehashed), 260 stored as patches" {
		t.Fatalf("summary:\n%s", out.String())
	}
}
