package sshconn_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/transfer/sshconn"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

func dial(t *testing.T, cfg sshconn.Config) (*sshconn.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sshconn.Dial(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// run executes cmd on the connection and returns its stdout.
func run(t *testing.T, c *sshconn.Client, cmd string) string {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("run %q: %v\n%s", cmd, err, out)
	}
	return string(out)
}

func TestKeyTypes(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(typ, func(t *testing.T) {
			cfg := s.ConnConfig()
			cfg.Identity = []string{s.AddClientKey(t, typ, "")}
			c, err := dial(t, cfg)
			if err != nil {
				t.Fatalf("dial with %s key: %v", typ, err)
			}
			if out := run(t, c, "echo key-"+typ); strings.TrimSpace(out) != "key-"+typ {
				t.Fatalf("echo over %s key: %q", typ, out)
			}
		})
	}
}

func TestAgentAuth(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	agentBin := sshtest.FindTool(t, "ssh-agent", "/usr/bin/ssh-agent")
	addBin := sshtest.FindTool(t, "ssh-add", "/usr/bin/ssh-add")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agentCmd := exec.Command(agentBin, "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	t.Cleanup(func() { agentCmd.Process.Kill(); agentCmd.Wait() })
	testkit.Eventually(t, 10*time.Second, "the agent socket", func() bool { _, err := os.Stat(sock); return err == nil })
	key := s.AddClientKey(t, "ecdsa", "")
	add := exec.Command(addBin, key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	cfg := s.ConnConfig()
	cfg.Identity, cfg.NoAgent, cfg.AgentSocket = nil, false, sock
	cfg.Home = t.TempDir() // no default key files: only the agent can authenticate
	c, err := dial(t, cfg)
	if err != nil {
		t.Fatalf("dial with agent key: %v", err)
	}
	if out := run(t, c, "echo via-agent"); !strings.Contains(out, "via-agent") {
		t.Fatalf("echo via agent: %q", out)
	}
}

func TestHashedKnownHosts(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	keygen := sshtest.FindTool(t, "ssh-keygen", "/usr/bin/ssh-keygen")
	kh := filepath.Join(t.TempDir(), "known_hosts")
	copyFile(t, s.KnownHosts, kh)
	if out, err := exec.Command(keygen, "-H", "-f", kh).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -H: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(kh)
	if !strings.HasPrefix(string(b), "|1|") {
		t.Fatalf("known_hosts not hashed: %q", b)
	}
	cfg := s.ConnConfig()
	cfg.KnownHosts = kh
	if _, err := dial(t, cfg); err != nil {
		t.Fatalf("dial with hashed known_hosts: %v", err)
	}
}

func TestUnknownHostRefusedThenAccepted(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	kh := filepath.Join(t.TempDir(), "sub", "known_hosts") // missing folder and file
	cfg := s.ConnConfig()
	cfg.KnownHosts = kh
	_, err := dial(t, cfg)
	if sshconn.KindOf(err) != sshconn.KindHostKey {
		t.Fatalf("unknown host: want host key error, got %v", err)
	}
	fp := ssh.FingerprintSHA256(s.HostKey)
	for _, want := range []string{fp, "--accept-new-host-key", "[127.0.0.1]:" + strconv.Itoa(s.Port)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if _, statErr := os.Stat(kh); !errors.Is(statErr, os.ErrNotExist) {
		t.Fatalf("refused host was written to known_hosts: %v", statErr)
	}

	cfg.AcceptNewHostKey = true
	if _, err := dial(t, cfg); err != nil {
		t.Fatalf("dial with accept-new: %v", err)
	}
	b, err := os.ReadFile(kh)
	if err != nil || !strings.Contains(string(b), s.KnownHostsLine(s.Addr)) {
		t.Fatalf("known_hosts after accept-new = %q, %v; want the server's line", b, err)
	}
	cfg.AcceptNewHostKey = false
	if _, err := dial(t, cfg); err != nil {
		t.Fatalf("dial after key was accepted: %v", err)
	}
}

func TestChangedHostKeyRefused(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	other := sshtest.GenerateKey(t, filepath.Join(dir, "other"), "ed25519")
	kh := filepath.Join(dir, "known_hosts")
	before := "# old key of the test host\n" + sshtestLine(s.Addr, other) + "\n"
	if err := os.WriteFile(kh, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s.ConnConfig()
	cfg.KnownHosts = kh
	cfg.AcceptNewHostKey = true // must not matter for a changed key
	_, err := dial(t, cfg)
	var hke *sshconn.HostKeyError
	if !errors.As(err, &hke) || !hke.Changed {
		t.Fatalf("changed key: want HostKeyError{Changed}, got %v", err)
	}
	if !strings.Contains(err.Error(), "HAS CHANGED") || !strings.Contains(err.Error(), ssh.FingerprintSHA256(s.HostKey)) {
		t.Fatalf("message: %v", err)
	}
	if after, _ := os.ReadFile(kh); string(after) != before {
		t.Fatalf("known_hosts was modified:\n%s", after)
	}
}

// TestKnownRSAKeyAndNewEd25519Key: when known_hosts has only an RSA key of a host that also has
// an ed25519 key, the client must ask for the RSA key, not report a changed key.
func TestOffersOnlyKnownHostKeyTypes(t *testing.T) {
	dir := t.TempDir()
	rsaHost := filepath.Join(dir, "host_rsa")
	sshtest.GenerateKey(t, rsaHost, "rsa")
	s := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"HostKey " + rsaHost}})
	rsaPub := readPub(t, rsaHost+".pub")
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(sshtestLine(s.Addr, rsaPub)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s.ConnConfig()
	cfg.KnownHosts = kh
	if _, err := dial(t, cfg); err != nil {
		t.Fatalf("dial with only the RSA host key known: %v", err)
	}
}

func TestConfigAlias(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := "Host other\n  HostName 192.0.2.1\n\nHost nas backup-*\n  HostName 127.0.0.1\n  Port " +
		strconv.Itoa(s.Port) + "\n  User " + s.User + "\n  IdentityFile " + s.ClientKey + "\n"
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	copyFile(t, s.KnownHosts, filepath.Join(home, ".ssh", "known_hosts"))
	for _, alias := range []string{"nas", "backup-1"} {
		c, err := dial(t, sshconn.Config{Host: alias, Home: home, NoAgent: true})
		if err != nil {
			t.Fatalf("dial alias %s: %v", alias, err)
		}
		if !strings.HasSuffix(c.Target, "@127.0.0.1:"+strconv.Itoa(s.Port)) {
			t.Fatalf("alias %s resolved to %s", alias, c.Target)
		}
	}
}

func TestAuthFailureClassified(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	cfg := s.ConnConfig()
	stranger := filepath.Join(t.TempDir(), "stranger")
	sshtest.GenerateKey(t, stranger, "ed25519")
	cfg.Identity = []string{stranger}
	_, err := dial(t, cfg)
	if sshconn.KindOf(err) != sshconn.KindAuth || sshconn.Retryable(err) {
		t.Fatalf("want auth error, got kind %v: %v", sshconn.KindOf(err), err)
	}
	if !strings.Contains(err.Error(), stranger) {
		t.Fatalf("auth error does not name the key tried: %v", err)
	}
}

func TestKeyFileErrors(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	keygen := sshtest.FindTool(t, "ssh-keygen", "/usr/bin/ssh-keygen")
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "secret", "-f", locked).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	cases := map[string]string{
		locked:                       "ssh-add",
		locked + ".pub":              "public key",
		filepath.Join(dir, "absent"): "no such file",
	}
	for file, want := range cases {
		cfg := s.ConnConfig()
		cfg.Identity = []string{file}
		_, err := dial(t, cfg)
		if sshconn.KindOf(err) != sshconn.KindConfig || !strings.Contains(err.Error(), want) {
			t.Errorf("identity %s: want config error mentioning %q, got %v", filepath.Base(file), want, err)
		}
	}
}

func TestNetworkErrorIsFastAndRetryable(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	s.Close()
	start := time.Now()
	_, err := dial(t, s.ConnConfig())
	if !sshconn.Retryable(err) {
		t.Fatalf("closed port: want retryable network error, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refused connection took %s", d)
	}
}

// TestDeadLinkDetected freezes a proxy between client and sshd: no FIN, no RST, just silence.
// The keepalive must end the connection, and a running session with it, within seconds.
func TestDeadLinkDetected(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	p := sshtest.NewProxy(t, s.Addr)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(s.KnownHostsLine(p.Addr)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s.ConnConfig()
	cfg.Port, _ = strconv.Atoi(p.Addr[strings.LastIndex(p.Addr, ":")+1:])
	cfg.KnownHosts = kh
	cfg.KeepaliveInterval, cfg.KeepaliveMax = 250*time.Millisecond, 4
	c, err := dial(t, cfg)
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out := &sshtest.Buffer{}
	sess.Stdout = out
	if err := sess.Start("echo started; sleep 60"); err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "started")
	time.Sleep(600 * time.Millisecond) // a few keepalives answered while the link is fine
	if c.Err() != nil {
		t.Fatalf("healthy link declared dead: %v", c.Err())
	}
	p.Freeze()
	start := time.Now()
	waitErr := make(chan error, 1)
	go func() { waitErr <- sess.Wait() }()
	select {
	case err = <-waitErr:
	case <-time.After(10 * time.Second):
		t.Fatal("session still waiting 10s after the link died")
	}
	if err == nil {
		t.Fatal("session on a dead link ended without error")
	}
	// 1 s of keepalives plus slack for a loaded CI machine; without them this would hang until
	// TCP gave up, which takes hours.
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("dead link noticed after %s", d)
	}
	if c.Err() == nil || sshconn.KindOf(c.Err()) != sshconn.KindNetwork || !strings.Contains(c.Explain(err).Error(), "link is dead") {
		t.Fatalf("Err() = %v, Explain = %v", c.Err(), c.Explain(err))
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the link died")
	}
}

func TestParseTarget(t *testing.T) {
	good := []struct {
		in, user, host string
		port           int
	}{
		{"esx1", "", "esx1", 0},
		{"root@esx1", "root", "esx1", 0},
		{"root@esx1:2222", "root", "esx1", 2222},
		{"10.0.0.5:22", "", "10.0.0.5", 22},
		{"[fe80::1]:2200", "", "fe80::1", 2200},
		{"admin@[::1]", "admin", "::1", 0},
		{"fe80::1", "", "fe80::1", 0},
	}
	for _, g := range good {
		u, h, p, err := sshconn.ParseTarget(g.in)
		if err != nil || u != g.user || h != g.host || p != g.port {
			t.Errorf("ParseTarget(%q) = %q %q %d %v", g.in, u, h, p, err)
		}
	}
	for _, bad := range []string{"", "@host", "host:0", "host:99999", "host:x", "[::1", "[::1]x", "user@", "a b"} {
		if _, _, _, err := sshconn.ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readPub(t *testing.T, file string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sshtestLine(addr string, k ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, k)
}

// TestCipherPreference: AES-GCM is chosen when the server offers everything, and a server that
// only has chacha20-poly1305 (or only AES-CTR) still works.
func TestCipherPreference(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"LogLevel DEBUG1"}})
	c, err := dial(t, s.ConnConfig())
	if err != nil {
		t.Fatal(err)
	}
	run(t, c, "true")
	if log := s.LogText(); !strings.Contains(log, "client->server cipher: aes128-gcm@openssh.com") {
		t.Fatalf("negotiated cipher is not aes128-gcm; sshd log:\n%s", log)
	}
	for _, only := range []string{"chacha20-poly1305@openssh.com", "aes256-ctr"} {
		s := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"Ciphers " + only}})
		c, err := dial(t, s.ConnConfig())
		if err != nil {
			t.Fatalf("server with only %s: %v", only, err)
		}
		if out := run(t, c, "echo ok"); strings.TrimSpace(out) != "ok" {
			t.Fatalf("server with only %s: %q", only, out)
		}
	}
}

func TestBadLocalFilesAreConfigErrors(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	garbage := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(garbage, []byte("[127.0.0.1]:22 ssh-ed25519 not-base64!!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s.ConnConfig()
	cfg.KnownHosts = garbage
	if _, err := dial(t, cfg); sshconn.KindOf(err) != sshconn.KindConfig || !strings.Contains(err.Error(), garbage) {
		t.Errorf("garbage known_hosts: want config error naming the file, got %v", err)
	}
	sshConfig := filepath.Join(dir, "config")
	if err := os.WriteFile(sshConfig, []byte("Host nas\n  Port twenty-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = s.ConnConfig()
	cfg.Host, cfg.Port, cfg.SSHConfig = "nas", 0, sshConfig
	if _, err := dial(t, cfg); sshconn.KindOf(err) != sshconn.KindConfig || !strings.Contains(err.Error(), "twenty-two") {
		t.Errorf("bad Port in ssh config: want config error, got %v", err)
	}
}

// TestHandshakeBounded: a host that accepts TCP but never speaks must not hang Dial: the
// handshake timeout and the context both end it.
func TestHandshakeBounded(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	p := sshtest.NewProxy(t, s.Addr)
	p.Freeze()
	cfg := s.ConnConfig()
	cfg.Port, _ = strconv.Atoi(p.Addr[strings.LastIndex(p.Addr, ":")+1:])
	cfg.HandshakeTimeout = 500 * time.Millisecond
	start := time.Now()
	_, err := dial(t, cfg)
	if !sshconn.Retryable(err) || time.Since(start) > 5*time.Second {
		t.Fatalf("silent host with 500ms handshake timeout: %v after %s", err, time.Since(start))
	}
	cfg.HandshakeTimeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = sshconn.Dial(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("silent host with 300ms context: %v after %s", err, time.Since(start))
	}
}

func TestImpossibleKnownHostsPathIsConfigError(t *testing.T) {
	// A path below a regular file fails even for root, who writes through file modes.
	s := sshtest.Start(t, sshtest.Options{})
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s.ConnConfig()
	cfg.KnownHosts = filepath.Join(blocker, "known_hosts")
	cfg.AcceptNewHostKey = true
	_, err := dial(t, cfg)
	if sshconn.KindOf(err) != sshconn.KindConfig || !strings.Contains(err.Error(), blocker) {
		t.Fatalf("accept-new into an impossible path: want config error naming it, got %v", err)
	}
}
