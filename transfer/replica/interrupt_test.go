package replica_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/wire"
)

type sums map[string]string

func replicaSums(t testing.TB, v *vm) sums {
	s := sums{}
	for _, f := range v.files {
		s[f.Name] = disktest.FileSum(t, filepath.Join(v.root, "vm1", f.Name))
	}
	return s
}

func sourceSums(t testing.TB, v *vm) sums {
	s := sums{}
	for _, f := range v.files {
		s[f.Name] = disktest.FileSum(t, f.Source)
	}
	return s
}

func TestServerKilledMidUpdateRollsBackOnNextStart(t *testing.T) {
	v := newVM(t)
	// The small file goes first so the kill finds it already replaced.
	v.files[0], v.files[1] = v.files[1], v.files[0]
	first := child(t, v.root, 0)
	push(t, first, "vm1", v.files, bs)
	old := replicaSums(t, v)
	first.sess.Close()

	// Change 24 blocks (more than one journal group), grow the disk, change the .vmx.
	must(t, os.Truncate(v.disk.path, 70*bs))
	var blocks []int64
	for b := int64(12); b < 36; b++ {
		blocks = append(blocks, b)
	}
	v.disk.fill(blocks...)
	must(t, os.WriteFile(v.vmx, []byte("displayName = \"vm1\"\nmemSize = \"2048\"\n"), 0o644))
	want := sourceSums(t, v)

	doomed := child(t, v.root, 20) // dies right after the 20th block is written in place
	start := time.Now()
	_, err := replica.Push(context.Background(), doomed.sess, "vm1", v.files, replica.Options{BlockSize: bs})
	if !errors.Is(err, wire.ErrLinkLost) {
		t.Fatalf("push to a server killed mid-update: %v, want a lost link", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("push took %v to notice the dead server", d)
	}
	select {
	case <-doomed.child.Done:
		werr := doomed.child.Err
		var ee interface{ Sys() any }
		if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("server exit: %v, want killed at the hook", werr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server was not killed at the hook point")
	}
	// The replica is torn right now: some new blocks in place, the journal still there.
	torn := replicaSums(t, v)
	if torn["vm1-flat.vmdk"] == old["vm1-flat.vmdk"] || torn["vm1-flat.vmdk"] == want["vm1-flat.vmdk"] {
		t.Fatal("the kill did not land mid-update; the test proves nothing")
	}
	if torn["vm1.vmx"] != want["vm1.vmx"] {
		t.Fatal("the .vmx was not replaced before the kill; the test proves nothing")
	}
	journals, _ := filepath.Glob(filepath.Join(v.root, ".snapferry-undo", "*.journal"))
	if len(journals) != 1 {
		t.Fatalf("undo journals after the kill: %v", journals)
	}

	// The next server start rolls back to the previous replica exactly.
	next := child(t, v.root, 0)
	if got := replicaSums(t, v); !equalSums(got, old) {
		t.Fatalf("after restart the replica is %v, want the previous one %v", got, old)
	}
	if journals, _ := filepath.Glob(filepath.Join(v.root, ".snapferry-undo", "*.journal")); len(journals) != 0 {
		t.Errorf("journal left after rollback: %v", journals)
	}
	// A rerun completes.
	st := push(t, next, "vm1", v.files, bs)
	if got := replicaSums(t, v); !equalSums(got, want) {
		t.Fatalf("after the rerun the replica is %v, want the source %v", got, want)
	}
	if st.BlocksChanged != 24 {
		t.Errorf("rerun changed %d blocks, want the 24 changed ones", st.BlocksChanged)
	}
}

func equalSums(a, b sums) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestServerKilledAfterCommitRecordRollsForward(t *testing.T) {
	v := newVM(t)
	first := child(t, v.root, 0)
	push(t, first, "vm1", v.files, bs)
	first.sess.Close()
	v.disk.fill(20, 21, 22)
	want := sourceSums(t, v)

	doomed := child(t, v.root, 0, envKillAtCommit+"=1")
	if _, err := replica.Push(context.Background(), doomed.sess, "vm1", v.files, replica.Options{BlockSize: bs}); !errors.Is(err, wire.ErrLinkLost) {
		t.Fatalf("push to a server killed at commit: %v", err)
	}
	<-doomed.child.Done
	sidecarNew, _ := filepath.Glob(filepath.Join(v.root, "vm1", ".snapferry-*.hashes.new"))
	if len(sidecarNew) != 1 {
		t.Fatalf("new sidecars after the kill: %v; the kill did not land between commit record and install", sidecarNew)
	}
	// The update had committed: the next start keeps it and installs the new sidecar.
	next := child(t, v.root, 0)
	if got := replicaSums(t, v); !equalSums(got, want) {
		t.Fatalf("after restart the replica is %v, want the committed update %v", got, want)
	}
	if left, _ := filepath.Glob(filepath.Join(v.root, "vm1", ".snapferry-*.new")); len(left) != 0 {
		t.Errorf("left after roll forward: %v", left)
	}
	// The installed sidecar is right: an unchanged rerun sends no block.
	if st := push(t, next, "vm1", v.files, bs); st.BlocksChanged != 0 {
		t.Errorf("rerun after roll forward changed %d blocks, want 0", st.BlocksChanged)
	}
}

func TestConcurrentUpdatesOfOneSetAreRefused(t *testing.T) {
	v := newVM(t)
	a := child(t, v.root, 0)
	b := child(t, v.root, 0)
	ctx := context.Background()
	// a holds the set open (Begin without Commit) through the raw op.
	st, err := a.sess.Open(ctx, wire.OpRepBegin, beginArgs("vm1"), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Response(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err = replica.Push(ctx, b.sess, "vm1", v.files, replica.Options{BlockSize: bs})
	if !errors.Is(err, wire.ErrRefused) || !strings.Contains(err.Error(), "another run") {
		t.Fatalf("second update of a busy set: %v, want refused", err)
	}
	// When a's session ends its open update is rolled back and the set is free again.
	a.sess.Close()
	a.child.Stdin.Close()
	<-a.child.Done
	push(t, b, "vm1", v.files, bs)
	v.assertSame(t)
}

// beginArgs encodes the argument of OpRepBegin the way Push does (a string).
func beginArgs(set string) []byte {
	var e wire.Encoder
	e.String(set)
	return e.B
}
