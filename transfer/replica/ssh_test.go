package replica_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/remotestore"
	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/sshtest"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// TestPushOverSSH replicates through the real path: OpenSSH's sshd on 127.0.0.1, the binary
// deployed by storespec and started as `serve --root`, the wire session on the SSH channel.
func TestPushOverSSH(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{}) // skips without sshd, fails with CI set
	v := newVM(t)
	self, err := os.Executable()
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := "ssh://" + s.User + "@" + s.Host + ":" + strconv.Itoa(s.Port) + v.root
	be, err := storespec.Open(ctx, spec, storespec.Options{SSH: s.ConnConfig(), Version: "test", LocalBinary: self,
		DeployPath: filepath.Join(s.Dir, "remote-bin", "snapferry-test")})
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	defer be.Close()
	client := remoteClient(t, be)

	st, err := replica.Push(ctx, client.Session(), "vm1", v.files, replica.Options{BlockSize: bs})
	must(t, err)
	v.assertSame(t)
	if st.BlocksChanged != 7 {
		t.Errorf("full run over SSH: %+v", st)
	}
	v.disk.fill(8, 9)
	st, err = replica.Push(ctx, client.Session(), "vm1", v.files, replica.Options{BlockSize: bs})
	must(t, err)
	v.assertSame(t)
	if st.BlocksChanged != 2 {
		t.Errorf("incremental run over SSH changed %d blocks, want 2", st.BlocksChanged)
	}
}

// remoteClient finds the wire client below storespec's wrappers.
func remoteClient(t testing.TB, be store.Backend) *remotestore.Client {
	for {
		switch b := be.(type) {
		case *remotestore.Client:
			return b
		case *remotestore.Laned: // read lanes around the primary session
			return b.Client
		case interface{ Unwrap() store.Backend }:
			be = b.Unwrap()
		default:
			t.Fatalf("ssh:// store is a %T, not a wire client", be)
		}
	}
}
