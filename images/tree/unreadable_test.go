package tree

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// The unreadable-entries test needs permissions that bite, and root's do not. When the tests
// run as root it re-runs this test binary as nobody (uid 65534) to do the backup.
const childEnv = "SNAPFERRY_TREE_TEST_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(backupChild(dir))
	}
	os.Exit(m.Run())
}

// unreadableReport is what the backup of the unreadable fixture yields, as JSON.
type unreadableReport struct {
	Errors []string          // "path: error" from Result.Errors
	Nodes  map[string]string // path -> node Error ("" when fine), for the fixture's entries
	Stats  repo.Stats
}

func backupChild(dir string) int {
	rep, err := backupUnreadable(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 1
	}
	return 0
}

func backupUnreadable(dir string) (unreadableReport, error) {
	ctx := context.Background()
	bs := memblobs.New(1 << 20)
	res, err := Backup(ctx, bs, []string{dir}, Options{Chunking: smallChunks})
	if err != nil {
		return unreadableReport{}, err
	}
	rep := unreadableReport{Nodes: map[string]string{}, Stats: res.Stats}
	for _, e := range res.Errors {
		rep.Errors = append(rep.Errors, e.Error())
	}
	err = List(ctx, bs, res.Root, func(p string, n *repo.Node) error {
		if strings.HasPrefix(p, dir+"/") {
			rep.Nodes[strings.TrimPrefix(p, dir+"/")] = n.Error
		}
		return nil
	})
	return rep, err
}

func TestUnreadableEntriesMakeAPartialBackup(t *testing.T) {
	// The fixture must be reachable for nobody: a fresh 0755 dir, not t.TempDir's 0700 one.
	dir, err := os.MkdirTemp("", "snapferry-unreadable-")
	must(t, err)
	t.Cleanup(func() {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
		os.RemoveAll(dir)
	})
	must(t, os.Chmod(dir, 0o755))
	writeFile(t, filepath.Join(dir, "ok.txt"), []byte("fine"), 0o644)
	writeFile(t, filepath.Join(dir, "secret.txt"), []byte("no"), 0o000)
	writeFile(t, filepath.Join(dir, "big-secret"), memblobs.RandBytes(1, 100<<10), 0o000) // the chunker's path
	writeFile(t, filepath.Join(dir, "closed/inside.txt"), []byte("x"), 0o644)
	must(t, os.Chmod(filepath.Join(dir, "closed"), 0o000))
	writeFile(t, filepath.Join(dir, "z/after.txt"), []byte("after"), 0o644)

	var rep unreadableReport
	if os.Geteuid() != 0 {
		rep, err = backupUnreadable(dir)
		must(t, err)
	} else {
		rep = runAsNobody(t, dir)
	}
	sort.Strings(rep.Errors)
	t.Logf("errors: %q", rep.Errors)
	if len(rep.Errors) != 3 ||
		!strings.HasPrefix(rep.Errors[0], dir+"/big-secret: open: permission denied") ||
		!strings.HasPrefix(rep.Errors[1], dir+"/closed: open directory: permission denied") ||
		!strings.HasPrefix(rep.Errors[2], dir+"/secret.txt: open: permission denied") {
		t.Fatalf("errors %q, want big-secret, closed and secret.txt denied", rep.Errors)
	}
	for _, p := range []string{"secret.txt", "big-secret", "closed"} {
		if !strings.Contains(rep.Nodes[p], "permission denied") {
			t.Errorf("node %s carries error %q", p, rep.Nodes[p])
		}
	}
	for _, p := range []string{"ok.txt", "z", "z/after.txt"} {
		if e, ok := rep.Nodes[p]; !ok || e != "" {
			t.Errorf("node %s: present %v, error %q: the backup did not go on", p, ok, e)
		}
	}
}

// runAsNobody runs the backup in a copy of this test binary as uid/gid 65534.
func runAsNobody(t *testing.T, dir string) unreadableReport {
	t.Helper()
	bin := filepath.Join(dir, "..", filepath.Base(dir)+".test")
	copyFile(t, os.Args[0], bin)
	t.Cleanup(func() { os.Remove(bin) })
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, "GOCOVERDIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("backup as nobody: %v\n%s", err, stderr.String())
	}
	var rep unreadableReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	return rep
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	must(t, err)
	_, err = io.Copy(out, in)
	must(t, err)
	must(t, out.Close())
}
