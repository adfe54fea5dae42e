package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// binPath is the snapferry binary built once for the end-to-end tests: they run it as a real
// process, as users and cron do.
var binPath string

func TestMain(m *testing.M) {
	if os.Getenv(throttleEnv) != "" {
		os.Exit(throttleMain()) // a helper process of e2e_killidle_test.go, not a test run
	}
	dir, err := os.MkdirTemp("", "snapferry-e2e-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "snapferry")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic("build snapferry: " + err.Error())
	}
	ownHome(dir)
	code := rgwtest.Lazy(m) // an RGW starts only if an s3:// test asks (CI names its own)
	os.RemoveAll(dir)
	os.Exit(code)
}

// ownHome points HOME at a folder of this test run, so nothing the tests run (the binary, the
// serve it deploys, ssh known_hosts) ever writes into the real home of whoever runs them. The Go
// caches keep their place: later `go build`s would otherwise start cold.
func ownHome(dir string) {
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		if os.Getenv(v) != "" {
			continue
		}
		if out, err := exec.Command("go", "env", v).Output(); err == nil {
			os.Setenv(v, strings.TrimSpace(string(out)))
		}
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		panic(err)
	}
	os.Setenv("HOME", home)
}

type result struct {
	code           int
	stdout, stderr string
}

// sf runs the binary with a private state folder and returns its exit code and output.
func sf(t *testing.T, home string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+home)
	return runCollect(t, cmd)
}

// runCollect runs a prepared snapferry command and returns its exit code and output; only a
// failure to start it fails the test.
func runCollect(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return result{code, o.String(), e.String()}
}

// mustSF runs the binary and fails the test unless it exits with want.
func mustSF(t *testing.T, home string, want int, args ...string) result {
	t.Helper()
	r := sf(t, home, args...)
	if r.code != want {
		t.Fatalf("snapferry %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// sparseImage makes a thin image of size bytes with random data at the given MiB offsets.
func sparseImage(t *testing.T, path string, size int64, mibs ...int64) {
	t.Helper()
	var pieces []disktest.Piece
	for _, m := range mibs {
		pieces = append(pieces, disktest.Piece{Off: m << 20, Data: randomMiB(m)})
	}
	disktest.SparseFile(t, path, size, pieces...)
}

// writeRandom writes 1 MiB of incompressible, seed-determined data at each given MiB offset.
func writeRandom(t *testing.T, f *os.File, mibs ...int64) {
	t.Helper()
	for _, m := range mibs {
		if _, err := f.WriteAt(randomMiB(m), m<<20); err != nil {
			t.Fatal(err)
		}
	}
}

// randomMiB is the 1 MiB of incompressible data writeRandom and sparseImage write at MiB m.
func randomMiB(m int64) []byte { return memblobs.RandBytes(uint64(m)*7919+1, 1<<20) }

// mustRun runs a tool with extra environment and returns its output.
func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			if p, err := exec.LookPath(filepath.Join(strings.SplitN(strings.TrimPrefix(e, "PATH="), ":", 2)[0], name)); err == nil {
				cmd.Path = p
			}
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// largestPack is the biggest pack file of the repository folder: a backup's data, not the small
// host-state snapshot every backup also stores.
func largestPack(t *testing.T, repoDir string) string {
	t.Helper()
	var pack string
	var size int64
	filepath.WalkDir(filepath.Join(repoDir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, serr := d.Info(); serr == nil && fi.Size() > size {
				pack, size = p, fi.Size()
			}
		}
		return err
	})
	if pack == "" {
		t.Fatalf("no pack files in %s", repoDir)
	}
	return pack
}
