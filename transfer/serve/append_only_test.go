package serve

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/wire"
)

// TestAppendOnlyRefusesEveryDestructivePath is the ransomware test: a client of an append-only
// server, however it words its requests, cannot delete, overwrite or truncate a repository
// file, and every refusal is logged. Only its own lock files may go.
func TestAppendOnlyRefusesEveryDestructivePath(t *testing.T) {
	c, root := newRepo(t, Options{AppendOnly: true})
	files := map[store.Handle]string{
		{Kind: store.KindConfig}:                                     "config",
		{Kind: store.KindKeys, Name: strings.Repeat("1", 64)}:        "key",
		{Kind: store.KindData, Name: "ab" + strings.Repeat("2", 62)}: "pack",
		{Kind: store.KindIndex, Name: strings.Repeat("3", 64)}:       "index",
		{Kind: store.KindSnapshots, Name: strings.Repeat("4", 64)}:   "snapshot",
	}
	for h, content := range files {
		must(t, c.save(h, []byte(content)))
	}
	pathOf := func(h store.Handle) string {
		if h.Kind == store.KindConfig {
			return filepath.Join(root, "config")
		}
		if h.Kind == store.KindData {
			return filepath.Join(root, "data", h.Name[:2], h.Name)
		}
		return filepath.Join(root, string(h.Kind), h.Name)
	}
	snap := store.Handle{Kind: store.KindSnapshots, Name: strings.Repeat("4", 64)}

	for h := range files {
		// Remove: refused for every kind but locks.
		if _, err := c.call(wire.OpRemove, wire.EncodeHandle(h), nil); !errors.Is(err, wire.ErrRefused) {
			t.Errorf("remove %s: %v, want refused", h, err)
		}
		// Save over the name (overwrite, or truncate with an empty body): exists.
		for _, body := range [][]byte{[]byte("ransom note"), {}} {
			if err := c.save(h, body); !errors.Is(err, store.ErrExist) {
				t.Errorf("save %d bytes over %s: %v, want ErrExist", len(body), h, err)
			}
		}
	}
	// Path tricks that would turn the lock exception (or another kind) into a delete elsewhere.
	tricks := []store.Handle{
		{Kind: store.KindLocks, Name: "../snapshots/" + snap.Name},
		{Kind: store.KindLocks, Name: "../config"},
		{Kind: store.KindLocks, Name: ".."},
		{Kind: store.KindLocks, Name: root + "/config"},
		{Kind: store.KindLocks, Name: "x\x00/../../config"},
		{Kind: store.KindLocks, Name: "x\n../config"},
		{Kind: store.Kind("locks/../snapshots"), Name: snap.Name},
		{Kind: store.KindData, Name: "../index/" + strings.Repeat("3", 64)},
		{Kind: store.KindConfig, Name: "../../etc/passwd"},
	}
	for _, h := range tricks {
		if _, err := c.call(wire.OpRemove, wire.EncodeHandle(h), nil); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("remove %q/%q: %v, want refused", h.Kind, h.Name, err)
		}
		if err := c.save(h, []byte("x")); err == nil {
			t.Errorf("save %q/%q succeeded", h.Kind, h.Name)
		}
	}
	// A lock file that is a symlink to a snapshot: removing the "lock" removes the link at most.
	must(t, os.Symlink(pathOf(snap), filepath.Join(root, "locks", "evil")))
	c.call(wire.OpRemove, wire.EncodeHandle(store.Handle{Kind: store.KindLocks, Name: "evil"}), nil)
	// Create on an existing repository is refused; it never empties folders.
	if _, err := c.call(wire.OpCreate, nil, nil); !errors.Is(err, store.ErrExist) {
		t.Errorf("create over an existing repository: %v, want ErrExist", err)
	}
	// Replica ops rewrite files in place: all refused except the read-only hash listing.
	for _, op := range []wire.Op{wire.OpRepBegin, wire.OpRepWrite, wire.OpRepPut, wire.OpRepCommit, wire.OpRepAbort} {
		var body []byte
		if hasUpload(op) {
			body = []byte("block data")
		}
		if _, err := c.call(op, []byte("snapshots"), body); !errors.Is(err, wire.ErrRefused) || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("replica op %s: %v, want refused as append-only", op, err)
		}
	}

	for h, content := range files {
		if got, err := os.ReadFile(pathOf(h)); err != nil || string(got) != content {
			t.Errorf("%s after the attacks: %q, %v; want %q", h, got, err, content)
		}
	}
	log := c.log.String()
	for h := range files {
		if !strings.Contains(log, "refused remove of "+h.String()+" (append-only)") || !strings.Contains(log, "refused overwrite of "+h.String()) {
			t.Errorf("log lacks the refusals for %s", h)
		}
	}
	for _, op := range []wire.Op{wire.OpRepBegin, wire.OpRepWrite, wire.OpRepPut, wire.OpRepCommit, wire.OpRepAbort} {
		if !strings.Contains(log, "refused "+op.String()+" (append-only)") {
			t.Errorf("log lacks the refusal of %s", op)
		}
	}
	if n := strings.Count(log, "refused remove"); n < len(files)+len(tricks)-2 {
		t.Errorf("only %d remove refusals logged:\n%s", n, log)
	}
	// The exception itself still works: a client releases its own lock.
	lock := store.Handle{Kind: store.KindLocks, Name: strings.Repeat("5", 64)}
	must(t, c.save(lock, []byte("lock")))
	if _, err := c.call(wire.OpRemove, wire.EncodeHandle(lock), nil); err != nil {
		t.Errorf("remove own lock: %v", err)
	}
}

// TestAppendOnlyLocksOfOtherSessions: an append-only client releases the locks it wrote but not
// another session's (an administrator's prune lock, another host's backup lock); an unrestricted
// session may remove any.
func TestAppendOnlyLocksOfOtherSessions(t *testing.T) {
	admin, root := newRepo(t, Options{})
	pruneLock := store.Handle{Kind: store.KindLocks, Name: strings.Repeat("6", 64)}
	must(t, admin.save(pruneLock, []byte("exclusive")))
	client := connect(t, Options{Root: root, AppendOnly: true})
	if _, err := client.call(wire.OpRemove, wire.EncodeHandle(pruneLock), nil); !errors.Is(err, wire.ErrRefused) ||
		!strings.Contains(err.Error(), "not written in this session") {
		t.Fatalf("append-only removal of another session's lock: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "locks", pruneLock.Name)); err != nil {
		t.Fatalf("the other session's lock is gone: %v", err)
	}
	if !strings.Contains(client.log.String(), "refused remove of locks/"+pruneLock.Name+" (append-only: not written in this session)") {
		t.Errorf("refusal not logged:\n%s", client.log.String())
	}
	own := store.Handle{Kind: store.KindLocks, Name: strings.Repeat("7", 64)}
	must(t, client.save(own, []byte("shared")))
	if _, err := client.call(wire.OpRemove, wire.EncodeHandle(own), nil); err != nil {
		t.Fatalf("release own lock: %v", err)
	}
	// Removed once, it is no longer this session's to remove again (a second remove of the same
	// name would delete a file someone else saved under it meanwhile).
	must(t, admin.save(own, []byte("shared")))
	if _, err := client.call(wire.OpRemove, wire.EncodeHandle(own), nil); !errors.Is(err, wire.ErrRefused) {
		t.Fatalf("second removal of a released lock name: %v", err)
	}
	if _, err := admin.call(wire.OpRemove, wire.EncodeHandle(pruneLock), nil); err != nil {
		t.Fatalf("unrestricted session removing a lock: %v", err)
	}
}

// TestAppendOnlyRefusesNamesThatAreNotIDs: an append-only client cannot add snapshots/not-an-id
// or locks/xxx (readers would have to step around them), saved whole or streamed; ids pass.
func TestAppendOnlyRefusesNamesThatAreNotIDs(t *testing.T) {
	c, root := newRepo(t, Options{AppendOnly: true})
	for _, h := range []store.Handle{
		{Kind: store.KindSnapshots, Name: "not-an-id"},
		{Kind: store.KindLocks, Name: "xxx"},
		{Kind: store.KindIndex, Name: strings.Repeat("A", 64)},
		{Kind: store.KindKeys, Name: strings.Repeat("1", 63)},
		{Kind: store.KindData, Name: strings.Repeat("1", 65)},
	} {
		if err := c.save(h, []byte("x")); !errors.Is(err, wire.ErrRefused) {
			t.Errorf("save %s: %v, want refused", h, err)
		}
		if _, err := os.Stat(filepath.Join(root, store.RelPath(h))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was created: %v", h, err)
		}
	}
	if !strings.Contains(c.log.String(), "refused save of snapshots/not-an-id (append-only: the name is not an id)") {
		t.Errorf("log lacks the refusal:\n%s", c.log.String())
	}
	must(t, c.save(store.Handle{Kind: store.KindSnapshots, Name: strings.Repeat("ab", 32)}, []byte("ok")))
}
