package sshtest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Options shape one sshd. The zero value is a plain server with an SFTP subsystem.
type Options struct {
	// ForceCommand, when set, is written as sshd's ForceCommand: every session runs it whatever
	// the client asked (the client's request is in $SSH_ORIGINAL_COMMAND).
	ForceCommand string
	// KeyOptions prefixes the default client key's authorized_keys line, e.g.
	// `command="/bin/echo hi",restrict`.
	KeyOptions string
	// NoSFTP leaves out the sftp subsystem, for testing clients against an exec-only host.
	NoSFTP bool
	// ExtraConfig lines go first in sshd_config, so they override the defaults (sshd keeps
	// the first value of a keyword; HostKey and other list keywords add up). No Match blocks.
	ExtraConfig []string
	// NewUser logs in as a throwaway account made for this server (home in Dir, /bin/sh),
	// instead of as the user running the test. OpenSSH treats root logins specially (their
	// sessions run in the privileged monitor: no signal delivery, for one), so tests of what an
	// ordinary account sees need it. It needs root and useradd; otherwise the test is skipped
	// (failed when CI is set). The account is deleted when the test ends.
	NewUser bool
}

// Server is one running sshd on 127.0.0.1. All paths are inside Dir, which the test owns.
type Server struct {
	Host string // always 127.0.0.1
	Port int
	Addr string // Host:Port
	User string // the account the client logs in as (the user running the test)
	Home string // the sessions' home: $HOME and where relative SFTP paths land (a folder in Dir unless NewUser)

	Dir            string // temp dir holding everything below
	ClientKey      string // private key file (ed25519, no passphrase) listed in authorized_keys
	AuthorizedKeys string // the authorized_keys file sshd reads on every login
	KnownHosts     string // a known_hosts file that trusts this server's host key at Addr
	HostKey        ssh.PublicKey
	Log            string // sshd's log file (LogLevel VERBOSE)

	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs a fresh sshd for the test and stops it when the test ends. A missing sshd skips the
// test, or fails it when CI is set.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	sshd := FindTool(t, "sshd", "/usr/sbin/sshd")
	keygen := FindTool(t, "ssh-keygen", "/usr/bin/ssh-keygen")
	s := newServer(t, opts)
	hostKeyFile := s.makeKeys(t, keygen, opts)
	if os.Geteuid() == 0 {
		// sshd running as root insists on its privilege separation directory; Debian's init
		// script creates it at boot, a container or CI box may never have run that.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("sshtest: create sshd privilege separation dir: %v", err)
		}
	}
	s.startOnFreePort(t, sshd, hostKeyFile, opts)
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
	if err := os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatalf("sshtest: write known_hosts: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		if opts.NewUser {
			removeUser(t, s.User)
		}
		if t.Failed() {
			t.Logf("sshtest: sshd log %s:\n%s", s.Log, s.LogText())
		}
	})
	return s
}

// newServer lays out the server's files in the test's folder and picks the account sessions
// log in as, with a home that is never the real one.
func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshtest: current user: %v", err)
	}
	home := u.HomeDir
	if home == "" {
		home = "/"
	}
	dir := t.TempDir()
	s := &Server{
		Host:           "127.0.0.1",
		User:           u.Username,
		Home:           home,
		Dir:            dir,
		ClientKey:      filepath.Join(dir, "client_ed25519"),
		AuthorizedKeys: filepath.Join(dir, "authorized_keys"),
		KnownHosts:     filepath.Join(dir, "known_hosts"),
		Log:            filepath.Join(dir, "sshd.log"),
	}
	if opts.NewUser {
		s.User, s.Home = newUser(t, dir)
		return s
	}
	// The current user's sessions get a home in the test's folder: $HOME for commands and the
	// SFTP start folder for relative paths (deploy's ~/.snapferry/bin), so no test ever
	// writes into the real home of whoever runs it. The login directory sshd changes to is
	// still the account's own; nothing writes relative to it.
	// It lives outside the test's temp folder: processes a session started (a deployed
	// serve writing its state on the way out) may outlive the test by a moment, and the
	// folder is removed once they are done with it (removeHome).
	if s.Home, err = os.MkdirTemp("", "sshtest-home-"); err != nil {
		t.Fatalf("sshtest: create home: %v", err)
	}
	t.Cleanup(func() { removeHome(t, s.Home) }) // runs after Close, registered later by Start
	return s
}

// makeKeys generates the host key and the client key and authorizes the client key. It returns
// the host key's file.
func (s *Server) makeKeys(t testing.TB, keygen string, opts Options) string {
	t.Helper()
	hostKeyFile := filepath.Join(s.Dir, "host_ed25519")
	generateKey(t, keygen, hostKeyFile, "ed25519")
	s.HostKey = readPublicKey(t, hostKeyFile+".pub")
	generateKey(t, keygen, s.ClientKey, "ed25519")
	s.authorize(t, s.ClientKey+".pub", opts.KeyOptions)
	if opts.NewUser {
		// sshd opens authorized_keys with the account's rights.
		if err := os.Chmod(s.AuthorizedKeys, 0o644); err != nil {
			t.Fatalf("sshtest: chmod authorized_keys: %v", err)
		}
	}
	return hostKeyFile
}

// startOnFreePort starts sshd on a free port, trying again on another (a port found free can be
// taken before sshd binds it).
func (s *Server) startOnFreePort(t testing.TB, sshd, hostKeyFile string, opts Options) {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		cfg := s.config(hostKeyFile, port, opts)
		cfgFile := filepath.Join(s.Dir, "sshd_config")
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
			t.Fatalf("sshtest: write sshd_config: %v", err)
		}
		if lastErr = s.run(sshd, cfgFile, port); lastErr == nil {
			return
		}
	}
	t.Fatalf("sshtest: start sshd: %v\n--- sshd log:\n%s", lastErr, s.LogText())
}

func (s *Server) config(hostKeyFile string, port int, opts Options) string {
	lines := append([]string{}, opts.ExtraConfig...)
	lines = append(lines,
		"Port "+strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"AddressFamily inet",
		"HostKey "+hostKeyFile,
		"PidFile "+filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile "+s.AuthorizedKeys,
		"AllowUsers "+s.User,
		"StrictModes no",
		"UsePAM no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		"MaxStartups 64",
		"MaxSessions 64",
		"LogLevel VERBOSE",
	)
	if !opts.NewUser {
		lines = append(lines, "SetEnv HOME="+s.Home)
	}
	if !opts.NoSFTP {
		sftp := "Subsystem sftp internal-sftp"
		if !opts.NewUser {
			sftp += " -d " + s.Home
		}
		lines = append(lines, sftp)
	}
	if opts.ForceCommand != "" {
		lines = append(lines, "ForceCommand "+opts.ForceCommand)
	}
	return strings.Join(lines, "\n") + "\n"
}

// removeHome removes a session home once no process runs a binary from it any more (a serve
// deployed there writes its state on the way out, after the test's client has gone), waiting
// for that with a deadline.
func removeHome(t testing.TB, home string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n := processesFrom(home); n == 0 {
			err := os.RemoveAll(home)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("sshtest: remove session home %s: %v", home, err)
				return
			}
		} else if time.Now().After(deadline) {
			t.Errorf("sshtest: %d processes still run from the session home %s", n, home)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesFrom counts the processes whose executable lies below dir (from /proc; 0 without it).
func processesFrom(dir string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && strings.HasPrefix(exe, dir+"/") {
			n++
		}
	}
	return n
}

// run starts sshd on port and waits until it answers with an SSH banner.
func (s *Server) run(sshd, cfgFile string, port int) error {
	cmd := exec.Command(sshd, "-D", "-f", cfgFile, "-E", s.Log)
	// Own process group so Close can stop the listener and any pre-auth children together;
	// Pdeathsig so a test binary killed by a timeout leaves no sshd behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", sshd, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("sshd on port %d exited at startup (%s)", port, cmd.ProcessState)
		default:
		}
		if err := waitBanner(addr); err == nil {
			s.Port, s.Addr, s.cmd, s.exited = port, addr, cmd, exited
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	return fmt.Errorf("sshd on port %d did not answer within 10s", port)
}

func waitBanner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}

// Close stops sshd. Sessions already running end when their client disconnects.
func (s *Server) Close() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// LogText returns sshd's log so far (for failure messages).
func (s *Server) LogText() string {
	b, err := os.ReadFile(s.Log)
	if err != nil {
		return fmt.Sprintf("(no sshd log: %v)", err)
	}
	return string(b)
}

// KnownHostsLine returns a known_hosts line that trusts this server's host key under addr (for
// example a Proxy's address, which the client sees instead of the server's).
func (s *Server) KnownHostsLine(addr string) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, s.HostKey)
}

// AddClientKey makes a new passphrase-less client key of keyType ("ed25519", "ecdsa", "rsa"),
// authorizes it with the given authorized_keys options (may be empty) and returns its private
// key file. sshd reads authorized_keys at each login, so this works on a running server.
func (s *Server) AddClientKey(t testing.TB, keyType, keyOptions string) string {
	t.Helper()
	keygen := FindTool(t, "ssh-keygen", "/usr/bin/ssh-keygen")
	f, err := os.CreateTemp(s.Dir, "client_"+keyType+"_*")
	if err != nil {
		t.Fatalf("sshtest: key file: %v", err)
	}
	f.Close()
	os.Remove(f.Name())
	generateKey(t, keygen, f.Name(), keyType)
	s.authorize(t, f.Name()+".pub", keyOptions)
	return f.Name()
}

func (s *Server) authorize(t testing.TB, pubFile, keyOptions string) {
	t.Helper()
	pub, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatalf("sshtest: read %s: %v", pubFile, err)
	}
	line := strings.TrimSpace(string(pub))
	if keyOptions != "" {
		line = keyOptions + " " + line
	}
	f, err := os.OpenFile(s.AuthorizedKeys, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("sshtest: open authorized_keys: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatalf("sshtest: append authorized_keys: %v", err)
	}
}

// GenerateKey writes a new passphrase-less OpenSSH key pair (file and file.pub) of keyType with
// the real ssh-keygen, so tests read keys in exactly the format users have.
func GenerateKey(t testing.TB, file, keyType string) ssh.PublicKey {
	t.Helper()
	generateKey(t, FindTool(t, "ssh-keygen", "/usr/bin/ssh-keygen"), file, keyType)
	return readPublicKey(t, file+".pub")
}

func generateKey(t testing.TB, keygen, file, keyType string) {
	t.Helper()
	args := []string{"-q", "-t", keyType, "-N", "", "-C", "sshtest", "-f", file}
	if keyType == "rsa" {
		args = append(args, "-b", "2048") // 3072 is the default; tests need no more than 2048
	}
	if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
		t.Fatalf("sshtest: ssh-keygen -t %s: %v\n%s", keyType, err, out)
	}
}

func readPublicKey(t testing.TB, file string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("sshtest: read %s: %v", file, err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatalf("sshtest: parse %s: %v", file, err)
	}
	return k
}

// FindTool returns the path of an outside tool, looked up on PATH and then at fallback. When it
// is missing the test is skipped, or failed when the environment variable CI is set.
func FindTool(t testing.TB, name, fallback string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if fallback != "" {
		if st, err := os.Stat(fallback); err == nil && !st.IsDir() {
			return fallback
		}
	}
	missing(t, name+" not found; install openssh-server (it brings the client tools too)")
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
