package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/images/disk/disktest"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// sfSecret runs the binary like sf with extra environment (passwords); password variables of
// the test's own environment are cleared first (empty counts as unset).
func sfSecret(t *testing.T, home string, env []string, args ...string) result {
	t.Helper()
	for _, k := range []string{envPassword, envPasswordFile, envNewPassword, envNewPasswordFile} {
		t.Setenv(k, "")
	}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	return sf(t, home, args...)
}

func mustSFSecret(t *testing.T, home string, env []string, want int, args ...string) result {
	t.Helper()
	r := sfSecret(t, home, env, args...)
	if r.code != want {
		t.Fatalf("snapferry %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// TestEncryptedRepositoryCLI: init --encrypt, backup and restore with the password from a file,
// exit 12 and an untouched repository for a wrong or missing password, key add/list/remove,
// tampering found by check --read-data with its location and refused by restore, and the
// password in no output.
func TestEncryptedRepositoryCLI(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	repoDir := filepath.Join(dir, "repo")
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 64<<20, 1, 2, 30)
	const secret, second = "Hunter2-first-secret", "Second-secret-Pw"
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte(secret+"\n"), 0o600)
	byFile := []string{"SNAPFERRY_PASSWORD_FILE=" + pwFile}
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.stdout, r.stderr); return r }

	keep(mustSFSecret(t, home, byFile, 0, "init", repoDir, "--encrypt"))
	// Unencrypted stores need no password; a plain --password flag does not exist.
	if r := keep(sfSecret(t, home, nil, "init", filepath.Join(dir, "other"), "--password", secret)); r.code != exitcode.Usage {
		t.Fatalf("--password flag: exit %d\n%s", r.code, r.stderr)
	}
	keep(mustSFSecret(t, home, byFile, 0, "backup", img, "--to", repoDir))
	keep(mustSFSecret(t, home, []string{"SNAPFERRY_PASSWORD=" + secret}, 0, "snapshots", "--repo", repoDir))
	keep(mustSFSecret(t, home, nil, 0, "snapshots", "--repo", repoDir, "--password-file", pwFile))

	before := disktest.TreeState(t, repoDir)
	wrong := keep(sfSecret(t, home, []string{"SNAPFERRY_PASSWORD=not-it"}, "backup", img, "--to", repoDir))
	if wrong.code != exitcode.WrongPassword || !strings.Contains(wrong.stderr, "no key file opens") {
		t.Fatalf("wrong password: exit %d\n%s", wrong.code, wrong.stderr)
	}
	none := keep(sfSecret(t, home, nil, "check", "--repo", repoDir))
	if none.code != exitcode.WrongPassword || !strings.Contains(none.stderr, "SNAPFERRY_PASSWORD_FILE") {
		t.Fatalf("no password: exit %d\n%s", none.code, none.stderr)
	}
	if after := disktest.TreeState(t, repoDir); len(after) != len(before) {
		t.Fatalf("a refused open wrote to the repository: %d files, was %d", len(after), len(before))
	}
	// A password for an unencrypted repository is refused (its config may have been swapped).
	plain := filepath.Join(dir, "plain")
	if r := keep(sfSecret(t, home, byFile, "init", plain)); r.code != exitcode.Usage || !strings.Contains(r.stderr, "not --encrypt") {
		t.Fatalf("init with a password but without --encrypt: exit %d\n%s", r.code, r.stderr)
	}
	keep(mustSFSecret(t, home, nil, 0, "init", plain))
	if r := keep(sfSecret(t, home, byFile, "snapshots", "--repo", plain)); r.code == 0 || !strings.Contains(r.stderr, "not encrypted") {
		t.Fatalf("password for a plain repository: exit %d\n%s", r.code, r.stderr)
	}

	// Keys: add a second password, open with it, remove the first, the first stops working.
	keep(mustSFSecret(t, home, append(byFile, "SNAPFERRY_NEW_PASSWORD="+second), 0, "key", "add", "--repo", repoDir))
	list := keep(mustSFSecret(t, home, byFile, 0, "key", "list", "--repo", repoDir))
	if strings.Count(list.stdout, "scrypt N=32768 r=8 p=1") != 2 || !strings.Contains(list.stdout, "(current)") {
		t.Fatalf("key list:\n%s", list.stdout)
	}
	first := strings.Fields(strings.Split(list.stdout, "\n")[1])[0]
	bySecond := []string{"SNAPFERRY_PASSWORD=" + second}
	if r := keep(sfSecret(t, home, byFile, "key", "remove", "--repo", repoDir, first)); r.code == 0 || !strings.Contains(r.stderr, "opened the repository with") {
		t.Fatalf("remove of the current key: exit %d\n%s", r.code, r.stderr)
	}
	keep(mustSFSecret(t, home, bySecond, 0, "key", "remove", "--repo", repoDir, first))
	if r := keep(sfSecret(t, home, byFile, "snapshots", "--repo", repoDir)); r.code != exitcode.WrongPassword {
		t.Fatalf("removed key still opens: exit %d", r.code)
	}
	if r := keep(sfSecret(t, home, bySecond, "key", "remove", "--repo", repoDir, strings.Fields(strings.Split(list.stdout, "\n")[2])[0])); r.code == 0 ||
		!strings.Contains(r.stderr, "opened the repository with") {
		t.Fatalf("remove of the last key: exit %d\n%s", r.code, r.stderr)
	}

	out := filepath.Join(dir, "out")
	keep(mustSFSecret(t, home, bySecond, 0, "restore", "latest", "--from", repoDir, "--target", out))
	if disktest.FileSum(t, filepath.Join(out, "disk.img")) != disktest.FileSum(t, img) {
		t.Fatal("restore from the encrypted repository differs")
	}
	keep(mustSFSecret(t, home, bySecond, 0, "check", "--repo", repoDir, "--read-data"))

	// Flip one byte inside the first blob of the largest pack: the image's data (every backup
	// also stores a small host-state snapshot, whose pack the image's restore never reads).
	pack := largestPack(t, repoDir)
	b, _ := os.ReadFile(pack)
	b[100] ^= 0x10
	os.WriteFile(pack, b, 0o600)
	chk := keep(sfSecret(t, home, bySecond, "check", "--repo", repoDir, "--read-data"))
	if chk.code != exitcode.Failed || !strings.Contains(chk.stdout, filepath.Base(pack)) || !strings.Contains(chk.stdout, "at offset 0") ||
		!strings.Contains(chk.stdout, "authentication failed") || !strings.Contains(chk.stdout, "damaged snapshot") {
		t.Fatalf("check of a tampered pack: exit %d\n%s\n%s", chk.code, chk.stdout, chk.stderr)
	}
	out2 := filepath.Join(dir, "out2")
	rst := keep(sfSecret(t, home, bySecond, "restore", "latest", "--from", repoDir, "--target", out2))
	if rst.code == 0 || !strings.Contains(rst.stderr, filepath.Base(pack)[:8]) {
		t.Fatalf("restore of tampered data: exit %d\n%s", rst.code, rst.stderr)
	}
	if fi, err := os.Stat(filepath.Join(out2, "disk.img")); err == nil && disktest.FileSum(t, filepath.Join(out2, "disk.img")) == disktest.FileSum(t, img) {
		t.Fatalf("restore claims an intact file of %d bytes from tampered data", fi.Size())
	}

	for _, o := range outputs {
		if strings.Contains(o, secret) || strings.Contains(o, second) || strings.Contains(o, "not-it") {
			t.Fatalf("a password appears in output:\n%s", o)
		}
	}
	// Nor in the job history, PID registry or logs of the state folder, nor in the repository.
	for _, folder := range []string{home, repoDir} {
		for p, c := range disktest.TreeState(t, folder) {
			if strings.Contains(c, secret) || strings.Contains(c, second) || strings.Contains(c, "not-it") {
				t.Fatalf("a password is stored in %s", p)
			}
		}
	}
}

// TestAppendOnlyStoreOverSSH: with the documented forced-command key a client backs up but
// cannot forget, prune or remove keys, and the store keeps everything; the admin (here the store
// host itself, using the folder) can.
func TestAppendOnlyStoreOverSSH(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	repoDir := filepath.Join(dir, "repo")
	logFile := filepath.Join(dir, "serve.log")
	s := sshtest.Start(t, sshtest.Options{
		KeyOptions: fmt.Sprintf(`command="%s serve --root=%s --append-only 2>>%s",restrict`, binPath, repoDir, logFile),
	})
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("append-only-test-pw\n"), 0o600)
	env := []string{"SNAPFERRY_PASSWORD_FILE=" + pwFile}
	mustSFSecret(t, home, env, 0, "init", repoDir, "--encrypt") // on the store host
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 32<<20, 1, 5)
	spec := s.Spec("ssh", repoDir)
	client := s.Flags("--remote-path", binPath)

	mustSFSecret(t, home, env, 0, append([]string{"backup", img, "--to", spec}, client...)...)
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	f.WriteAt(bytes.Repeat([]byte("rewritten "), 1<<17), 1<<20) // the old block 1 becomes garbage
	f.Close()
	mustSFSecret(t, home, env, 0, append([]string{"backup", img, "--to", spec}, client...)...)
	before := disktest.TreeState(t, filepath.Join(repoDir, "data"))
	snapsBefore := disktest.TreeState(t, filepath.Join(repoDir, "snapshots"))

	forget := sfSecret(t, home, env, append([]string{"forget", "--repo", spec, "--keep-last", "1"}, client...)...)
	if forget.code == 0 || !strings.Contains(forget.stderr, "append-only") {
		t.Fatalf("forget through an append-only key: exit %d\n%s%s", forget.code, forget.stdout, forget.stderr)
	}
	// Give prune something to delete: the store host forgets the older snapshot (no prune).
	mustSFSecret(t, home, env, 0, "forget", "--repo", repoDir, "--keep-last", "1")
	prune := sfSecret(t, home, env, append([]string{"prune", "--repo", spec}, client...)...)
	t.Logf("forget: %s\nprune: %s", forget.stderr, prune.stderr)
	if prune.code == 0 || !strings.Contains(prune.stderr, "append-only") {
		t.Fatalf("prune through an append-only key: exit %d\n%s%s", prune.code, prune.stdout, prune.stderr)
	}
	keys := disktest.TreeState(t, filepath.Join(repoDir, "keys"))
	var keyID string
	for p := range keys {
		keyID = filepath.Base(p)
	}
	mustSFSecret(t, home, append(env, "SNAPFERRY_NEW_PASSWORD=another-pw"), 0, append([]string{"key", "add", "--repo", spec}, client...)...)
	rm := sfSecret(t, home, append(env[:0:0], "SNAPFERRY_PASSWORD=another-pw"), append([]string{"key", "remove", "--repo", spec, keyID[:12]}, client...)...)
	if rm.code == 0 || !strings.Contains(rm.stderr, "append-only") {
		t.Fatalf("key remove through an append-only key: exit %d\n%s", rm.code, rm.stderr)
	}
	for p, c := range before {
		if got, err := os.ReadFile(p); err != nil || string(got) != c {
			t.Fatalf("pack %s changed or vanished: %v", p, err)
		}
	}
	if after := disktest.TreeState(t, filepath.Join(repoDir, "snapshots")); len(after) != len(snapsBefore)-1 {
		t.Fatalf("%d snapshots after a refused forget and the store host's forget, want %d", len(after), len(snapsBefore)-1)
	}
	if _, err := os.Stat(filepath.Join(repoDir, "keys", keyID)); err != nil {
		t.Fatalf("key file gone: %v", err)
	}
	log, _ := os.ReadFile(logFile)
	if !strings.Contains(string(log), "refused remove of snapshots/") || !strings.Contains(string(log), "refused remove of keys/") ||
		!strings.Contains(string(log), "refused remove of index/") {
		t.Fatalf("serve log lacks the refusals:\n%s", log)
	}
	// The store host itself may prune.
	mustSFSecret(t, home, env, 0, "prune", "--repo", repoDir)
	mustSFSecret(t, home, env, 0, "check", "--repo", repoDir, "--read-data")
}

// TestRestoreRefusesCraftedTree: a snapshot whose tree names ../ or absolute entries (written
// with the library, as an attacker with the repository key could) is refused by restore, and
// nothing appears outside the target.
func TestRestoreRefusesCraftedTree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	repoDir := filepath.Join(dir, "repo")
	mustSF(t, home, 0, "init", repoDir)
	for _, name := range []string{"../escaped", "/tmp/absolute-escape", "a/../../b", "..", "x\x00y"} {
		r, err := repo.Open(ctx, local.New(repoDir), repo.Options{TempDir: t.TempDir(), Hostname: "evil"})
		if err != nil {
			t.Fatal(err)
		}
		data := []byte("planted by a crafted snapshot")
		did := r.BlobID(data)
		r.SaveBlob(ctx, repo.DataBlob, did, data)
		tr := repo.Tree{Nodes: []repo.Node{{Name: name, Type: repo.NodeFile, Mode: 0o644, Size: uint64(len(data)),
			Content: []repo.ID{did}, ModTime: time.Unix(1, 0)}}}
		tb, err := tr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		tid := r.BlobID(tb)
		r.SaveBlob(ctx, repo.TreeBlob, tid, tb)
		sid, err := r.SaveSnapshot(ctx, &repo.Snapshot{Kind: repo.SnapshotFiles, Source: "/crafted", Tree: &tid, Time: time.Now()})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "target", "inner")
		res := sf(t, home, "restore", sid.String(), "--from", repoDir, "--target", target)
		if res.code == 0 || !strings.Contains(res.stderr, "crafted") {
			t.Fatalf("restore of a tree entry %q: exit %d\n%s%s", name, res.code, res.stdout, res.stderr)
		}
		for _, p := range []string{filepath.Join(dir, "target", "escaped"), filepath.Join(dir, "escaped"), "/tmp/absolute-escape", filepath.Join(dir, "b")} {
			if _, err := os.Lstat(p); err == nil {
				t.Fatalf("entry %q: restore wrote %s outside its target", name, p)
			}
		}
	}
}

// TestRestoreRefusesCraftedDiskNames: an image snapshot whose disk name or path would make
// restore write target/../evil is refused (as damage), and nothing is written outside the target.
// The manifest is written as a store host or an old bug could leave it: bytes in snapshots/.
func TestRestoreRefusesCraftedDiskNames(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	repoDir := filepath.Join(dir, "repo")
	mustSF(t, home, 0, "init", repoDir)
	for _, d := range []repo.Disk{
		{Name: "../evil.vmdk", Format: "vmdk", Path: "/vmfs/volumes/ds/x-flat.vmdk", BlockSize: 1 << 20},
		{Name: "x", Format: "raw", Path: "/images/..", BlockSize: 1 << 20},
	} {
		b, err := json.Marshal(&repo.Snapshot{Version: 1, Time: time.Now(), Host: "evil", Kind: repo.SnapshotImage, Source: "/crafted", Disks: []repo.Disk{d}})
		if err != nil {
			t.Fatal(err)
		}
		id := repo.ID(blake3.Sum256(b))
		if err := os.WriteFile(filepath.Join(repoDir, "snapshots", id.String()), b, 0o600); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "target", "inner")
		res := sf(t, home, "restore", id.String(), "--from", repoDir, "--target", target)
		if res.code == 0 || !strings.Contains(res.stderr, "crafted") {
			t.Fatalf("restore of disk %+v: exit %d\n%s%s", d, res.code, res.stdout, res.stderr)
		}
		ents, _ := os.ReadDir(filepath.Join(dir, "target"))
		for _, e := range ents {
			if e.Name() != "inner" {
				t.Fatalf("disk %+v: restore wrote %s outside its target", d, e.Name())
			}
		}
		os.Remove(filepath.Join(repoDir, "snapshots", id.String()))
	}
}
