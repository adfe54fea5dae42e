package guestfs

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// parseSfdiskStarts maps partition numbers to their start sectors from `sfdisk -J`.
func parseSfdiskStarts(t testing.TB, out []byte) map[int]int64 {
	t.Helper()
	var j struct {
		Partitiontable struct {
			Partitions []struct {
				Node  string `json:"node"`
				Start int64  `json:"start"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		t.Fatalf("sfdisk -J: %v\n%s", err, out)
	}
	m := map[int]int64{}
	for _, p := range j.Partitiontable.Partitions {
		i := strings.LastIndexFunc(p.Node, func(r rune) bool { return r < '0' || r > '9' })
		n, err := strconv.Atoi(p.Node[i+1:])
		if err != nil {
			t.Fatalf("sfdisk node %q", p.Node)
		}
		m[n] = p.Start
	}
	return m
}
