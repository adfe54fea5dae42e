package replica_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/serve"
	"github.com/snapferry/snapferry/transfer/wire"
	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// The test binary doubles as a serve child: envRoot names the root, envKillAfter makes it
// SIGKILL itself right after that many replica blocks were written in place.
const (
	envRoot      = "SNAPFERRY_REPLICA_TEST_ROOT"
	envKillAfter = "SNAPFERRY_REPLICA_TEST_KILL_AFTER"
	// envKillAtCommit makes it SIGKILL itself right after the commit record is durable.
	envKillAtCommit = "SNAPFERRY_REPLICA_TEST_KILL_AT_COMMIT"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "serve" && strings.HasPrefix(os.Args[2], "--root=") {
		// Deployed over SSH by storespec and started as `snapferry serve --root=DIR`.
		os.Setenv(envRoot, strings.TrimPrefix(os.Args[2], "--root="))
	}
	if root := os.Getenv(envRoot); root != "" {
		opts := serve.Options{Root: root, Log: os.Stderr}
		if n, err := strconv.ParseInt(os.Getenv(envKillAfter), 10, 64); err == nil {
			opts.ReplicaHooks.AfterBlockWrite = func(done int64) {
				if done == n {
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
					select {} // never continue past the hook point
				}
			}
		}
		if os.Getenv(envKillAtCommit) != "" {
			opts.ReplicaHooks.AfterCommitRecord = func() {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
		if err := serve.Serve(context.Background(), os.Stdin, os.Stdout, opts); err != nil {
			os.Stderr.WriteString("serve: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// server is a serve instance for a test: in process over pipes, or a child process.
type server struct {
	sess  *wire.Session
	child *wiretest.Child // nil in process
}

func inProcess(t testing.TB, root string, opts serve.Options) *server {
	t.Helper()
	l := wiretest.Pipes(t)
	opts.Root = root
	done := make(chan struct{})
	go func() {
		if err := serve.Serve(context.Background(), l.ServerR, l.ServerW, opts); err != nil {
			t.Errorf("serve: %v", err)
		}
		l.ServerW.Close()
		close(done)
	}()
	sess, _, err := wire.Dial(context.Background(), l.ClientR, l.ClientW, wire.Hello{Program: "replica-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sess.Close()
		l.ClientW.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("serve did not end after the client closed")
		}
	})
	return &server{sess: sess}
}

// child starts a serve child; killAfter > 0 kills it after that many block writes, extra adds
// environment.
func child(t testing.TB, root string, killAfter int, extra ...string) *server {
	t.Helper()
	env := append([]string{envRoot + "=" + root}, extra...)
	if killAfter > 0 {
		env = append(env, envKillAfter+"="+strconv.Itoa(killAfter))
	}
	ch := wiretest.StartChild(t, env...)
	sess, _, err := wire.Dial(context.Background(), ch.Stdout, ch.Stdin, wire.Hello{Program: "replica-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return &server{sess: sess, child: ch}
}

// disk builds sparse test images block by block.
type disk struct {
	t    testing.TB
	path string
	bs   int64
	rng  *rand.ChaCha8
}

func newDisk(t testing.TB, path string, size, bs int64) *disk {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var seed [32]byte
	copy(seed[:], path)
	return &disk{t: t, path: path, bs: bs, rng: rand.NewChaCha8(seed)}
}

// fill writes compressible pseudo-random data (half random bytes, half a repeated pattern, so
// zstd has something to do) into the given blocks.
func (d *disk) fill(blocks ...int64) { d.write(d.blockData, blocks) }

// zero overwrites blocks with zeros (allocated zeros, not holes).
func (d *disk) zero(blocks ...int64) { d.write(func() []byte { return make([]byte, d.bs) }, blocks) }

func (d *disk) write(data func() []byte, blocks []int64) {
	d.t.Helper()
	f, err := os.OpenFile(d.path, os.O_RDWR, 0)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	for _, b := range blocks {
		if _, err := f.WriteAt(data(), b*d.bs); err != nil {
			d.t.Fatal(err)
		}
	}
}

func (d *disk) blockData() []byte {
	buf := make([]byte, d.bs)
	d.rng.Read(buf[:d.bs/2])
	for i := d.bs / 2; i < d.bs; i++ {
		buf[i] = byte(i % 251)
	}
	return buf
}

func push(t testing.TB, s *server, set string, files []replica.File, bs int64) replica.Stats {
	t.Helper()
	st, err := replica.Push(context.Background(), s.sess, set, files, replica.Options{BlockSize: bs})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return st
}
