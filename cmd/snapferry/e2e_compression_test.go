package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"
)

// TestCompressionChoice: a repository made with --compression=fast, backed up into with every
// mode in turn, holds a mix of codecs that checks clean and restores each image exactly; the
// stored sizes order as the modes promise; a bad word is a usage error.
func TestCompressionChoice(t *testing.T) {
	dir := t.TempDir()
	home, repoDir := filepath.Join(dir, "state"), filepath.Join(dir, "repo")
	mustSF(t, home, 0, "init", repoDir, "--compression=fast")
	cfg, err := os.ReadFile(filepath.Join(repoDir, "config"))
	if err != nil || !strings.Contains(string(cfg), `"compression": "fast"`) {
		t.Fatalf("config after init --compression=fast: %v\n%s", err, cfg)
	}
	if r := sf(t, home, "backup", dir, "--to", repoDir, "--compression=lz4"); r.code != 2 ||
		!strings.Contains(r.stderr, "--compression") {
		t.Fatalf("bad --compression: exit %d, %s", r.code, r.stderr)
	}
	text := strings.Repeat("snapferry compresses text-like guest data well enough\n", 1<<16)
	stored := map[string]int64{}
	imgs := map[string]string{}
	for _, mode := range []string{"", "auto", "max", "off"} { // "": the repository's default, fast
		name := "disk-" + mode + ".img"
		if mode == "" {
			name = "disk-default.img"
		}
		img := filepath.Join(dir, name)
		// The same data under another name each time: the mode, not dedup, decides the size.
		if err := os.WriteFile(img, []byte(text+name), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"backup", img, "--image", "--to", repoDir, "--json"}
		if mode != "" {
			args = append(args, "--compression="+mode)
		}
		out := mustSF(t, home, 0, args...)
		var sum struct {
			Items []backupItem `json:"items"`
		}
		if err := json.Unmarshal([]byte(out.stdout), &sum); err != nil || len(sum.Items) != 1 {
			t.Fatalf("decode summary %q: %v", out.stdout, err)
		}
		stored[mode] = sum.Items[0].Stats.BytesStored
		imgs[mode] = img
	}
	if !(stored["max"] <= stored["auto"] && stored["auto"] < stored[""] && stored[""] < stored["off"]) {
		t.Fatalf("stored bytes by mode do not order max <= auto < fast < off: %v", stored)
	}
	mustSF(t, home, 0, "check", "--repo", repoDir, "--read-data")
	for mode, img := range imgs {
		out := filepath.Join(dir, "out-"+mode)
		mustSF(t, home, 0, "restore", "latest", "--source", img, "--from", repoDir, "--target", out)
		if disktest.FileSum(t, filepath.Join(out, filepath.Base(img))) != disktest.FileSum(t, img) {
			t.Fatalf("mode %q: restored image differs", mode)
		}
	}
}
