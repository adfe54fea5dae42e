package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/transfer/sshtest"
	"github.com/snapferry/snapferry/transfer/tape"
)

// tapeSets reads `tape list --json` of a state folder.
func tapeSets(t *testing.T, home string) []tape.SetEntry {
	t.Helper()
	r := mustSF(t, home, 0, "tape", "list", "--json")
	var sets []tape.SetEntry
	if err := json.Unmarshal([]byte(r.stdout), &sets); err != nil {
		t.Fatalf("tape list --json: %v\n%s", err, r.stdout)
	}
	return sets
}

func setOf(t *testing.T, sets []tape.SetEntry, source string) tape.SetEntry {
	t.Helper()
	for _, s := range sets {
		if s.Source == source {
			return s
		}
	}
	t.Fatalf("no save set of %s in %+v", source, sets)
	return tape.SetEntry{}
}

// TestTapeLocalBackupRestore labels a virtual tape on this host, refuses an unlabeled tape and
// a wrong pool, backs up two images and a folder to it and restores an image and a file.
func TestTapeLocalBackupRestore(t *testing.T) {
	dir := t.TempDir()
	home, tp := filepath.Join(dir, "state"), filepath.Join(dir, "tape")
	img1, img2 := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	sparseImage(t, img1, 16<<20, 0, 5)
	sparseImage(t, img2, 16<<20, 1, 2, 15)
	folder := filepath.Join(dir, "etc")
	os.MkdirAll(filepath.Join(folder, "sub"), 0o755)
	os.WriteFile(filepath.Join(folder, "sub", "hosts"), []byte("127.0.0.1 localhost\n"), 0o644)

	r := sf(t, home, "backup", img1, "--to", "tape://"+filepath.Join(dir, "blank"))
	if r.code != exitcode.Failed || !strings.Contains(r.stderr, "not labeled") || !strings.Contains(r.stderr, "tape label") {
		t.Fatalf("unlabeled tape: exit %d\n%s", r.code, r.stderr)
	}
	mustSF(t, home, 0, "tape", "label", tp, "--pool", "weekly", "--volume", "W0001", "--block-size", "64K")
	if r := sf(t, home, "tape", "label", tp, "--pool", "weekly"); r.code != exitcode.Usage || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("label over a label: exit %d\n%s", r.code, r.stderr)
	}
	r = sf(t, home, "backup", img1, "--to", "tape://"+tp, "--pool", "daily")
	if r.code != exitcode.Failed || !strings.Contains(r.stderr, `not pool "daily"`) {
		t.Fatalf("wrong pool: exit %d\n%s", r.code, r.stderr)
	}
	mustSF(t, home, 0, "backup", img1, img2, folder, "--to", "tape://"+tp, "--pool", "weekly", "--tag", "monday")
	sets := tapeSets(t, home)
	if len(sets) != 3 {
		t.Fatalf("want 3 save sets, got %+v", sets)
	}
	b := setOf(t, sets, img2)
	if !b.Complete || b.Parts[0].File != 2 || b.Parts[0].Volume != "W0001" || b.Tags[0] != "monday" {
		t.Fatalf("set of %s: %+v", img2, b)
	}
	out := filepath.Join(dir, "out")
	mustSF(t, home, 0, "restore", b.ID[:10], "--from", "tape://"+tp, "--target", out)
	if disktest.FileSum(t, filepath.Join(out, "b.img")) != disktest.FileSum(t, img2) {
		t.Fatal("image restored from tape differs")
	}
	mustSF(t, home, 0, "restore", "latest", "--source", folder, "--from", "tape://"+tp, "--target", out)
	if got, _ := os.ReadFile(filepath.Join(out, folder, "sub", "hosts")); string(got) != "127.0.0.1 localhost\n" {
		t.Fatalf("file restored from tape: %q", got)
	}
	// --bwlimit paces the save set: 2 MiB of random blocks at 1 MiB/s take well over a second.
	start := time.Now()
	mustSF(t, home, 0, "backup", img1, "--to", "tape://"+tp, "--pool", "weekly", "--bwlimit", "1M")
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("2 MiB at --bwlimit=1M took %v", el)
	}
	if st := mustSF(t, home, 0, "tape", "status", tp); !strings.Contains(st.stdout, "volume W0001, pool weekly") || !strings.Contains(st.stdout, "4 save sets") {
		t.Fatalf("tape status:\n%s", st.stdout)
	}
	list := mustSF(t, home, 0, "tape", "list", "--volumes")
	if !strings.Contains(list.stdout, "W0001") || !strings.Contains(list.stdout, "weekly") {
		t.Fatalf("tape list --volumes:\n%s", list.stdout)
	}
	if left, _ := filepath.Glob(filepath.Join(home, "tmp", "tape-restore-*")); len(left) != 0 {
		t.Fatalf("restores left temporary repositories: %v", left)
	}
}

// tapeHost is the far side of the SSH tests: a loopback sshd and a state folder for serve.
type tapeHost struct {
	s    *sshtest.Server
	home string
}

// newTapeHost starts the tape host's sshd. Its drive daemons are detached and leave on their
// own once the last client is gone, writing the catalog copy on the way out: the test waits
// for them, so none is still writing into the folder the test's cleanup removes (and one that
// does not leave is a bug worth a failure).
func newTapeHost(t *testing.T, dir string) tapeHost {
	h := tapeHost{s: sshtest.Start(t, sshtest.Options{}), home: filepath.Join(dir, "tapehost")}
	t.Cleanup(func() {
		mark := "--home=" + h.home
		if testkit.Poll(30*time.Second, func() bool { return len(processesWith("--tape-daemon", mark)) == 0 }) {
			return
		}
		left := processesWith("--tape-daemon", mark)
		for _, p := range left {
			syscall.Kill(p, syscall.SIGKILL)
		}
		t.Errorf("tape daemon(s) %v of %s still running 30 s after the last client left", left, h.home)
	})
	return h
}

// processesWith lists the PIDs whose command line holds every one of args.
func processesWith(args ...string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		all, parts := true, strings.Split(string(b), "\x00")
		for _, a := range args {
			all = all && slices.Contains(parts, a)
		}
		if all {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (h tapeHost) spec(dev string) string {
	return fmt.Sprintf("tape://%s@%s%s", h.s.User, h.s.Addr, dev)
}

func (h tapeHost) args(extra ...string) []string {
	return append(extra, h.s.Flags("--tape-home", h.home)...)
}

// TestTapeVMsOverSSH backs up three VMs of the ESXi simulator over the loopback sshd to a
// virtual tape on the tape host, restores one by seeking to its file, and one to a datastore.
func TestTapeVMsOverSSH(t *testing.T) {
	root, env, _ := simHost(t,
		sim.VMSpec{Name: "mail 1", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []sim.DiskSpec{
			{Size: 16 << 20, Data: []sim.Extent{{Offset: 0, Length: 2 << 20, Seed: 11}}}}},
		sim.VMSpec{Name: "web 2", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []sim.DiskSpec{
			{Size: 16 << 20, Data: []sim.Extent{{Offset: 4 << 20, Length: 1 << 20, Seed: 12}}}}},
		sim.VMSpec{Name: "dns 3", Datastore: "ssd store", PoweredOn: false, Disks: []sim.DiskSpec{
			{Size: 8 << 20, Data: []sim.Extent{{Offset: 1 << 20, Length: 1 << 20, Seed: 13}}}}},
	)
	dir := t.TempDir()
	h := newTapeHost(t, dir)
	home, tp := filepath.Join(dir, "esxi-state"), filepath.Join(dir, "tapes", "drive0")
	os.MkdirAll(filepath.Dir(tp), 0o755)
	mustSF(t, h.home, 0, "tape", "label", tp, "--pool", "vms", "--volume", "VM0001", "--block-size", "128K")
	sfEnv(t, home, env, 0, h.args("backup", "--vm=all", "--to", h.spec(tp), "--pool", "vms")...)
	sets := tapeSets(t, h.home)
	if len(sets) != 3 {
		t.Fatalf("want 3 VM save sets, got %+v", sets)
	}
	files := map[int64]bool{}
	for _, s := range sets {
		if s.Kind != "vm" || !s.Complete || len(s.Parts) != 1 {
			t.Fatalf("VM set: %+v", s)
		}
		files[s.Parts[0].File] = true
	}
	if len(files) != 3 {
		t.Fatalf("three VMs, one after another, should be three tape files: %+v", sets)
	}
	web := setOf(t, sets, "web 2")
	out := filepath.Join(dir, "out")
	r := sfEnv(t, home, env, 0, h.args("restore", web.ID[:12], "--from", h.spec(tp), "--target", out)...)
	src, _ := filepath.Glob(filepath.Join(root, "datastore1", "web 2", "*-flat.vmdk"))
	got, _ := filepath.Glob(filepath.Join(out, "*-flat.vmdk"))
	if len(src) != 1 || len(got) != 1 || disktest.FileSum(t, src[0]) != disktest.FileSum(t, got[0]) {
		t.Fatalf("VM disk restored from tape: source %v, restored %v\n%s", src, got, r.stderr)
	}
	sfEnv(t, home, env, 0, h.args("restore", "latest", "--source", "dns 3", "--from", h.spec(tp),
		"--datastore", "datastore1", "--name", "dns 3 from tape", "--register")...)
	if list := mustRun(t, env, "vim-cmd", "vmsvc/getallvms"); !strings.Contains(list, "dns 3 from tape") {
		t.Fatalf("VM restored from tape is not registered:\n%s", list)
	}
	// The client side can list the tape host's catalog over SSH too.
	lr := mustSF(t, home, 0, h.args("tape", "list", h.spec(tp))...)
	if strings.Count(lr.stdout, "complete") != 3 {
		t.Fatalf("remote tape list:\n%s", lr.stdout)
	}
	// A far side that cannot run serve: its own words reach the user.
	bad := sf(t, home, h.args("tape", "list", h.spec(tp), "--remote-path", "/nonexistent/snapferry")...)
	if bad.code != exitcode.Failed || !strings.Contains(bad.stderr, "/nonexistent/snapferry") || !strings.Contains(bad.stderr, "said: ") {
		t.Fatalf("missing remote binary: exit %d\n%s", bad.code, bad.stderr)
	}
}

// TestTapeSpanMultiplexScan writes three images at once (--streams=3) over SSH to a small
// virtual tape, so they share a tape file and spill onto a second volume the changer hook
// loads; then the catalog is lost, `tape scan` of the second volume rebuilds it, and every
// image restores (the hook loads the first volume back). A damaged record is reported with its
// volume and file number.
func TestTapeSpanMultiplexScan(t *testing.T) {
	dir := t.TempDir()
	h := newTapeHost(t, dir)
	home, slots, drive := filepath.Join(dir, "client"), filepath.Join(dir, "slots"), filepath.Join(dir, "drive")
	os.MkdirAll(slots, 0o755)
	for _, v := range []string{"V1", "V2"} {
		os.Remove(drive)
		os.Symlink(filepath.Join(slots, v), drive)
		mustSF(t, h.home, 0, "tape", "label", drive, "--pool", "p", "--volume", v, "--block-size", "64K", "--capacity", "4M")
	}
	os.Remove(drive)
	os.Symlink(filepath.Join(slots, "V1"), drive)
	changer := fmt.Sprintf(`v=${SNAPFERRY_TAPE_VOLUME:-V2}; ln -sfn %s/"$v" "$SNAPFERRY_TAPE_DEVICE"`, slots)
	var imgs []string
	for i := 0; i < 3; i++ {
		img := filepath.Join(dir, fmt.Sprintf("vm%d.img", i))
		sparseImage(t, img, 8<<20, int64(i), int64(i+3))
		imgs = append(imgs, img)
	}
	mustSF(t, home, 0, h.args(append([]string{"backup", "--to", h.spec(drive), "--pool", "p", "--streams", "3", "--changer", changer}, imgs...)...)...)
	sets := tapeSets(t, h.home)
	if len(sets) != 3 {
		t.Fatalf("want 3 sets: %+v", sets)
	}
	streams, spanned := map[uint32]bool{}, 0
	for _, s := range sets {
		if s.Parts[0].Volume != "V1" || s.Parts[0].File != 1 {
			t.Fatalf("multiplexed sets should all start in file 1 of V1: %+v", s.Parts)
		}
		streams[s.Parts[0].Stream] = true
		if len(s.Parts) == 2 && s.Parts[1].Volume == "V2" {
			spanned++
		}
	}
	if len(streams) != 3 || spanned == 0 {
		t.Fatalf("want 3 streams and a set spanning V1 and V2: %+v", sets)
	}
	os.Remove(filepath.Join(h.home, "tape", "catalog.json"))
	scan := mustSF(t, h.home, 0, "tape", "scan", drive)
	if !strings.Contains(scan.stdout, "volume V2") || !strings.Contains(scan.stdout, "catalog copy") {
		t.Fatalf("scan of V2:\n%s", scan.stdout)
	}
	rebuilt := tapeSets(t, h.home)
	for i, img := range imgs {
		s := setOf(t, rebuilt, img)
		if !s.Complete || len(s.Parts) != len(setOf(t, sets, img).Parts) {
			t.Fatalf("rebuilt set of %s: %+v", img, s)
		}
		out := filepath.Join(dir, fmt.Sprintf("out%d", i))
		mustSF(t, home, 0, h.args("restore", s.ID, "--from", h.spec(drive), "--target", out, "--changer", changer)...)
		if disktest.FileSum(t, filepath.Join(out, filepath.Base(img))) != disktest.FileSum(t, img) {
			t.Fatalf("%s restored from the rebuilt catalog differs", img)
		}
	}
	// Damage one record of file 1 on V1: restores of the sets in it name volume and file.
	damageVirtualRecord(t, filepath.Join(slots, "V1"), 1, 4)
	r := sf(t, home, h.args("restore", setOf(t, sets, imgs[0]).ID, "--from", h.spec(drive), "--target", filepath.Join(dir, "bad"), "--changer", changer)...)
	if r.code != exitcode.Failed || !strings.Contains(r.stderr, "volume V1 file 1 record 4") || !strings.Contains(r.stderr, "checksum") {
		t.Fatalf("damaged record: exit %d\n%s", r.code, r.stderr)
	}
}

// damageVirtualRecord flips a byte in record rec of file file of a virtual tape (layout in
// transfer/tape/device/virtual.go: a 32-byte header, then entries of u8 kind, u32 length, data).
func damageVirtualRecord(t *testing.T, path string, file, rec int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off, f, r := 32, 0, 0
	for off < len(b) {
		kind, n := b[off], int(uint32(b[off+1])|uint32(b[off+2])<<8|uint32(b[off+3])<<16|uint32(b[off+4])<<24)
		if kind == 2 {
			f, r, off = f+1, 0, off+5
			continue
		}
		if f == file && r == rec {
			b[off+5+1000] ^= 0x10
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		r++
		off += 5 + n
	}
	t.Fatalf("no record %d in file %d of %s", rec, file, path)
}

// TestTapeRealDrive runs label, backup and restore on a real drive when one is named
// (SNAPFERRY_TEST_TAPE=/dev/nstX, a scratch cartridge: it is overwritten).
func TestTapeRealDrive(t *testing.T) {
	dev := os.Getenv("SNAPFERRY_TEST_TAPE")
	if dev == "" {
		t.Skip("no tape drive: set SNAPFERRY_TEST_TAPE=/dev/nstX (scratch cartridge, it is overwritten)")
	}
	dir := t.TempDir()
	home, img := filepath.Join(dir, "state"), filepath.Join(dir, "d.img")
	sparseImage(t, img, 32<<20, 0, 7, 31)
	mustSF(t, home, 0, "tape", "label", dev, "--pool", "test", "--force")
	mustSF(t, home, 0, "backup", img, "--to", "tape://"+dev, "--pool", "test")
	mustSF(t, home, 0, "restore", "latest", "--from", "tape://"+dev, "--target", filepath.Join(dir, "out"))
	if disktest.FileSum(t, filepath.Join(dir, "out", "d.img")) != disktest.FileSum(t, img) {
		t.Fatal("image restored from the drive differs")
	}
}

// TestTapeTwoHostsOneDrive runs two backups at once, from two "hosts" (state folders), over SSH
// to one drive: the tape host's serve processes share it through the drive daemon, and both
// sets land complete on the tape and restore.
func TestTapeTwoHostsOneDrive(t *testing.T) {
	dir := t.TempDir()
	h := newTapeHost(t, dir)
	tp := filepath.Join(dir, "drive")
	mustSF(t, h.home, 0, "tape", "label", tp, "--pool", "shared", "--volume", "S1", "--block-size", "64K")
	imgs := []string{filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")}
	for i, img := range imgs {
		sparseImage(t, img, 64<<20, int64(i*10), int64(i*10+1), int64(i*10+2), int64(i*10+3))
	}
	// Each "host" runs its own copy of the binary: on one machine, a user launch's kill-idle
	// would otherwise take the other host's backup for an idle process of this installation.
	bins := make([]string, len(imgs))
	for i := range bins {
		bins[i] = filepath.Join(dir, fmt.Sprint("host", i), "bin", "snapferry")
		os.MkdirAll(filepath.Dir(bins[i]), 0o755)
		b, err := os.ReadFile(binPath)
		if err != nil || os.WriteFile(bins[i], b, 0o755) != nil {
			t.Fatalf("copy the binary for host %d: %v", i, err)
		}
	}
	results := make([]result, len(imgs))
	done := make(chan int)
	for i, img := range imgs {
		go func() {
			cmd := exec.Command(bins[i], h.args("backup", img, "--to", h.spec(tp), "--pool", "shared")...)
			cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+filepath.Join(dir, fmt.Sprint("host", i)))
			var o, e strings.Builder
			cmd.Stdout, cmd.Stderr = &o, &e
			err := cmd.Run()
			results[i] = result{code: cmd.ProcessState.ExitCode(), stdout: o.String(), stderr: e.String()}
			if err != nil && results[i].code == 0 {
				results[i].code = -1
			}
			done <- i
		}()
	}
	<-done
	<-done
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("backup of %s: exit %d\n%s\n%s", imgs[i], r.code, r.stdout, r.stderr)
		}
	}
	sets := tapeSets(t, h.home)
	a, b := setOf(t, sets, imgs[0]), setOf(t, sets, imgs[1])
	if !a.Complete || !b.Complete {
		t.Fatalf("sets: %+v", sets)
	}
	t.Logf("two hosts at once: files %d and %d, streams %d and %d", a.Parts[0].File, b.Parts[0].File, a.Parts[0].Stream, b.Parts[0].Stream)
	for i, s := range []tape.SetEntry{a, b} {
		out := filepath.Join(dir, fmt.Sprint("out", i))
		mustSF(t, filepath.Join(dir, "host0"), 0, h.args("restore", s.ID, "--from", h.spec(tp), "--target", out)...)
		if disktest.FileSum(t, filepath.Join(out, filepath.Base(imgs[i]))) != disktest.FileSum(t, imgs[i]) {
			t.Fatalf("%s restored differs", imgs[i])
		}
	}
}
