package storespec_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/serve"
	"github.com/snapferry/snapferry/transfer/sshtest"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// TestMain lets this test binary play `snapferry serve` once deploy has put it on the "remote"
// side: the same code path the real binary takes, without needing cmd/snapferry built.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		root := fs.String("root", "", "")
		appendOnly := fs.Bool("append-only", false, "")
		_ = fs.Parse(os.Args[2:])
		// A test that made ROOT/../serve-pids learns which far serves ran and which ended
		// (read lanes are far serves of their own): PID.start now, PID.end on a clean exit.
		pids := filepath.Join(filepath.Dir(*root), "serve-pids")
		mark := func(what string) {
			if _, err := os.Stat(pids); err == nil {
				_ = os.WriteFile(filepath.Join(pids, fmt.Sprintf("%d.%s", os.Getpid(), what)), nil, 0o600)
			}
		}
		mark("start")
		err := serve.Serve(context.Background(), os.Stdin, os.Stdout,
			serve.Options{Root: *root, AppendOnly: *appendOnly, Log: os.Stderr, Program: "storespec-test"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		mark("end")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func options(t testing.TB, s *sshtest.Server) storespec.Options {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return storespec.Options{
		SSH:         s.ConnConfig(),
		Version:     "test",
		LocalBinary: self,
		DeployPath:  filepath.Join(s.Dir, "remote-bin", "snapferry-test"),
	}
}

func spec(scheme string, s *sshtest.Server, path string) string {
	return scheme + "://" + s.User + "@" + s.Host + ":" + strconv.Itoa(s.Port) + path
}

func open(t *testing.T, raw string, opts storespec.Options) store.Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	be, err := storespec.Open(ctx, raw, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", raw, err)
	}
	return be
}

func TestOpenLocalAndTape(t *testing.T) {
	dir := t.TempDir()
	be, err := storespec.Open(context.Background(), dir, storespec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := be.(*local.Backend); !ok || be.Location() != dir {
		t.Fatalf("local spec gave %T at %s", be, be.Location())
	}
	if _, err := storespec.Open(context.Background(), "tape:///dev/nst0", storespec.Options{}); !errors.Is(err, storespec.ErrBadSpec) {
		t.Fatalf("tape spec as a store: %v", err)
	}
	if _, err := storespec.Open(context.Background(), "ssh://h", storespec.Options{}); !errors.Is(err, storespec.ErrBadSpec) {
		t.Fatalf("bad spec: %v", err)
	}
}

func TestSFTPConformance(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	opts := options(t, s)
	storetest.Run(t, func(t *testing.T) store.Backend {
		return open(t, spec("sftp", s, filepath.Join(t.TempDir(), "repo")), opts)
	})
}

// TestSSHConformance runs the whole chain: ssh, deploy of this test binary, `serve` on the far
// side, the wire protocol through the session's stdin/stdout.
func TestSSHConformance(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	opts := options(t, s)
	storetest.Run(t, func(t *testing.T) store.Backend {
		root := filepath.Join(t.TempDir(), "repo")
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
		return open(t, spec("ssh", s, root), opts)
	})
}

func TestSSHCreateAndServeErrors(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	opts := options(t, s)
	root := filepath.Join(t.TempDir(), "new", "repo")
	ctx := context.Background()
	_, err := storespec.Open(ctx, spec("ssh", s, root), opts)
	if err == nil || !strings.Contains(err.Error(), "create the folder first") {
		t.Fatalf("missing root: want serve's message passed on, got %v", err)
	}
	opts.Create = true
	be := open(t, spec("ssh", s, root), opts)
	defer be.Close()
	if err := be.Create(ctx); err != nil {
		t.Fatalf("create repository over ssh: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "data")); err != nil {
		t.Fatalf("repository folders not made on the remote side: %v", err)
	}
}

func TestHostKeyErrorPassesThrough(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	opts := options(t, s)
	opts.SSH.KnownHosts = filepath.Join(t.TempDir(), "empty_known_hosts")
	_, err := storespec.Open(context.Background(), spec("sftp", s, "/tmp"), opts)
	if err == nil || !strings.Contains(err.Error(), "--accept-new-host-key") {
		t.Fatalf("unknown host: %v", err)
	}
}

// TestForcedCommandKey: a key limited to `serve --root=DIR` by authorized_keys must work as a
// store with --remote-path (nothing deployed, no other command run).
func TestForcedCommandKey(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s := sshtest.Start(t, sshtest.Options{})
	key := s.AddClientKey(t, "ed25519", `command="`+self+` serve --root=`+root+` --append-only",restrict`)
	opts := storespec.Options{SSH: s.ConnConfig(), Version: "test", RemotePath: "/opt/snapferry/snapferry"}
	opts.SSH.Identity = []string{key}
	be := open(t, spec("ssh", s, "/ignored/by/forced/command"), opts)
	defer be.Close()
	ctx := context.Background()
	if err := be.Create(ctx); err != nil {
		t.Fatalf("create through forced command: %v", err)
	}
	h := store.Handle{Kind: store.KindSnapshots, Name: storetest.Name(1)}
	if err := be.Save(ctx, h, strings.NewReader("snap")); err != nil {
		t.Fatalf("save through forced command: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "snapshots", storetest.Name(1))); err != nil {
		t.Fatalf("file not in the forced root: %v", err)
	}
	if err := be.Remove(ctx, h); err == nil {
		t.Fatal("append-only forced command allowed a remove")
	}
}

// TestDeadLinkFailsFast: when the network between client and store host goes silent, store
// calls must fail within seconds (keepalive), not hang.
func TestDeadLinkFailsFast(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	for _, scheme := range []string{"ssh", "sftp"} {
		t.Run(scheme, func(t *testing.T) {
			be, p := createBehindProxy(t, s, scheme)
			ctx := context.Background()
			p.Freeze()
			start := time.Now()
			err := be.Save(ctx, store.Handle{Kind: store.KindData, Name: storetest.Name(1)}, storetest.NewReader(1, 4<<20))
			if err == nil {
				t.Fatal("save over a dead link succeeded")
			}
			if !strings.Contains(err.Error(), "the link is dead") {
				t.Errorf("error does not say the link died: %v", err)
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Fatalf("dead link noticed after %s: %v", d, err)
			}
			if _, err := be.Stat(ctx, store.Handle{Kind: store.KindData, Name: storetest.Name(1)}); err == nil {
				t.Fatal("stat over a dead link succeeded")
			}
		})
	}
}

// createBehindProxy creates a store at scheme:// reached through a proxy the test can freeze,
// with a keepalive that declares the link dead after about a second.
func createBehindProxy(t *testing.T, s *sshtest.Server, scheme string) (store.Backend, *sshtest.Proxy) {
	t.Helper()
	p := sshtest.NewProxy(t, s.Addr)
	opts := options(t, s)
	opts.Create = true
	opts.SSH.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(opts.SSH.KnownHosts, []byte(s.KnownHostsLine(p.Addr)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if scheme == "ssh" {
		// Deploy the far binary (this 20 MB test binary) first over a direct link with the
		// default keepalive: on a loaded machine the upload can starve the 1 s keepalive below,
		// and the link would be declared dead before the test starts. The proxied open then
		// finds the binary in place, as every run after the first does.
		direct := options(t, s)
		direct.Create = true
		open(t, spec("ssh", s, filepath.Join(t.TempDir(), "predeploy")), direct).Close()
	}
	opts.SSH.KeepaliveInterval, opts.SSH.KeepaliveMax = 250*time.Millisecond, 4
	be := open(t, scheme+"://"+s.User+"@"+p.Addr+filepath.Join(t.TempDir(), "repo"), opts)
	t.Cleanup(func() { be.Close() })
	if err := be.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	return be, p
}
