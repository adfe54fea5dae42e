package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// dataBytes sums the sizes of the pack files under repo/data.
func dataBytes(t *testing.T, repoDir string) (n int, bytes int64) {
	t.Helper()
	filepath.WalkDir(filepath.Join(repoDir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			if fi, err := d.Info(); err == nil {
				n++
				bytes += fi.Size()
			}
		}
		return nil
	})
	return n, bytes
}

// TestResumeAfterKillOverSSH: a backup over ssh:// is killed (SIGKILL, a real process) after
// it stored 2, 5 and 8 of its packs, before an index file named them (but the host-state
// snapshot's, saved beside the backup); the rerun indexes what
// the killed run left and sends less than 10% of it again. Compared with a complete backup of
// the same image into a fresh repository.
func TestResumeAfterKillOverSSH(t *testing.T) { resumeAfterKill(t, "ssh") }

// resumeAfterKill is TestResumeAfterKillOverSSH on a store kind with a folder on this machine
// (ssh, sftp). Over sftp:// check must also count the temp files the killed upload left in the
// folder (nothing on the far side removes them there).
func resumeAfterKill(t *testing.T, kind string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	img := filepath.Join(dir, "disk.img")
	mibs := make([]int64, 40)
	for i := range mibs {
		mibs[i] = int64(i)
	}
	sparseImage(t, img, 40<<20, mibs...)
	control := filepath.Join(dir, "control")
	mustSF(t, home, 0, "init", control, "--pack-size", "4M")
	mustSF(t, home, 0, "backup", img, "--to", control)
	_, full := dataBytes(t, control)

	for _, killAfter := range []int{2, 5, 8} {
		t.Run(fmt.Sprintf("killed-after-%d-packs", killAfter), func(t *testing.T) {
			repo := newTestRepo(t, kind, filepath.Join(dir, fmt.Sprint(killAfter)))
			repoDir := repo.dir
			mustSF(t, home, 0, "init", repoDir, "--pack-size", "4M")
			spec, client := repo.spec, repo.client
			cmd := exec.Command(binPath, append([]string{"backup", img, "--to", spec, "--bwlimit", "8M"}, client...)...)
			cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+home)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Minute)
			for {
				if n, _ := dataBytes(t, repoDir); n >= killAfter {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("no %d packs within 3 minutes", killAfter)
				}
				time.Sleep(20 * time.Millisecond) // polling the store for the event, bounded by the deadline
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			// The host-state snapshot, saved beside the backup from its start, writes one index
			// file (naming its pack and what the backup had packed by then).
			if idx, _ := os.ReadDir(filepath.Join(repoDir, "index")); len(idx) > 1 {
				t.Fatalf("%d index files exist before the rerun: the kill came too late to test resuming", len(idx))
			}
			// Over ssh:// the far side's serve drops the temp files of a session that ended, while
			// this looks: only sftp:// leaves them for prune (and check) to find.
			if temps := tempFilesIn(t, repoDir); kind == "sftp" && temps > 0 {
				chk := mustSF(t, home, 0, append([]string{"check", "--repo", spec, "--json"}, client...)...)
				var rep struct {
					TempFiles int `json:"temp_files"`
				}
				if err := json.Unmarshal([]byte(chk.stdout), &rep); err != nil || rep.TempFiles != temps {
					t.Fatalf("the killed run left %d temp files; check over %s counted %d (%v)", temps, kind, rep.TempFiles, err)
				}
				t.Logf("the killed run left %d temp files; check over %s counted them", temps, kind)
			}
			_, stored := dataBytes(t, repoDir)
			r := mustSF(t, home, 0, append([]string{"backup", img, "--to", spec}, client...)...)
			if !strings.Contains(r.stderr, "resumed: indexed") {
				t.Fatalf("the rerun did not resume:\n%s", r.stderr)
			}
			_, after := dataBytes(t, repoDir)
			sent := after - stored
			resent := stored + sent - full // what the rerun stored that the killed run had stored
			t.Logf("killed run stored %d bytes, rerun sent %d, complete backup %d: resent %d", stored, sent, full, resent)
			if resent*10 >= stored {
				t.Fatalf("the rerun sent %d of the %d bytes the killed run had stored again (limit 10%%)", resent, stored)
			}
			mustSF(t, home, 0, "check", "--repo", repoDir, "--read-data")
			out := filepath.Join(dir, fmt.Sprintf("out-%d", killAfter))
			mustSF(t, home, 0, append([]string{"restore", "latest", "--source", img, "--from", spec, "--target", out}, client...)...)
			a, _ := os.ReadFile(img)
			b, _ := os.ReadFile(filepath.Join(out, "disk.img"))
			if string(a) != string(b) {
				t.Fatal("the resumed backup restores other bytes")
			}
		})
	}
}

// tempFilesIn counts the temp files (store.TempPrefix) below a repository folder.
func tempFilesIn(t *testing.T, repoDir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(repoDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), store.TempPrefix) {
			n++
		}
		return nil
	})
	return n
}
