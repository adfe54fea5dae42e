package sshconn

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sshconfig "github.com/kevinburke/ssh_config"
)

// Defaults for the liveness settings; a dead link is noticed after about
// DefaultKeepaliveInterval * DefaultKeepaliveMax.
const (
	DefaultDialTimeout       = 10 * time.Second
	DefaultHandshakeTimeout  = 20 * time.Second
	DefaultKeepaliveInterval = 5 * time.Second
	DefaultKeepaliveMax      = 3
)

// EnvKnownHosts names the environment variable that overrides the default known_hosts file.
const EnvKnownHosts = "SNAPFERRY_KNOWN_HOSTS"

// Config says where and how to connect. Only Host is required.
type Config struct {
	Host string // a host name, an address or a ~/.ssh/config alias
	Port int    // 0: from ~/.ssh/config, else 22
	User string // "": from ~/.ssh/config, else the local user

	// Identity lists private key files (--identity). Empty: ~/.ssh/config IdentityFile, else
	// the OpenSSH default files that exist. A listed file that cannot be read is an error.
	Identity []string
	// NoAgent ignores $SSH_AUTH_SOCK.
	NoAgent bool
	// AgentSocket overrides $SSH_AUTH_SOCK.
	AgentSocket string

	KnownHosts       string // known_hosts file; "": $SNAPFERRY_KNOWN_HOSTS, else ~/.ssh/known_hosts
	AcceptNewHostKey bool   // append the key of a host not yet in KnownHosts (never a changed key)

	// SSHConfig is the ssh_config file for aliases; "": ~/.ssh/config; "none": no file.
	SSHConfig string
	// Home replaces the user's home directory for every default path ("~").
	Home string

	DialTimeout       time.Duration // 0: DefaultDialTimeout
	HandshakeTimeout  time.Duration // 0: DefaultHandshakeTimeout
	KeepaliveInterval time.Duration // 0: DefaultKeepaliveInterval; negative: no keepalives
	KeepaliveMax      int           // 0: DefaultKeepaliveMax
}

// target is a Config with the alias resolved and every default filled in.
type target struct {
	alias      string // what the user wrote, for messages
	hostname   string
	port       int
	user       string
	identities []string
	explicitID bool // identities came from the caller: a missing file is an error
	knownHosts string
	agentSock  string
}

func (t target) addr() string { return net.JoinHostPort(t.hostname, strconv.Itoa(t.port)) }

func (c Config) home() string {
	if c.Home != "" {
		return c.Home
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return h
	}
	return "/"
}

// resolve applies ~/.ssh/config and the defaults.
func (c Config) resolve() (target, error) {
	if c.Host == "" {
		return target{}, &Error{Kind: KindConfig, Op: "connect", Err: errors.New("no host given")}
	}
	home := c.home()
	t := target{alias: c.Host, hostname: c.Host, port: c.Port, user: c.User}
	fromFile, err := c.applySSHConfig(&t, home)
	if err != nil {
		return target{}, err
	}
	if t.port == 0 {
		t.port = 22
	}
	if t.user == "" {
		t.user = localUser()
	}
	switch {
	case len(c.Identity) > 0:
		t.explicitID = true
		for _, p := range c.Identity {
			t.identities = append(t.identities, t.expand(p, home))
		}
	case len(fromFile) > 0:
		for _, p := range fromFile {
			t.identities = append(t.identities, t.expand(p, home))
		}
	default:
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			t.identities = append(t.identities, filepath.Join(home, ".ssh", n))
		}
	}
	t.knownHosts = c.KnownHosts
	if t.knownHosts == "" {
		t.knownHosts = os.Getenv(EnvKnownHosts)
	}
	if t.knownHosts == "" {
		t.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	t.knownHosts = t.expand(t.knownHosts, home)
	if !c.NoAgent {
		t.agentSock = c.AgentSocket
		if t.agentSock == "" {
			t.agentSock = os.Getenv("SSH_AUTH_SOCK")
		}
	}
	return t, nil
}

// applySSHConfig fills in what the ssh config file (SSHConfig, default ~/.ssh/config; "none"
// for none) says about the host and t does not set yet: HostName, Port, User. It returns the
// file's IdentityFile entries, unexpanded.
func (c Config) applySSHConfig(t *target, home string) ([]string, error) {
	cfgFile := c.SSHConfig
	if cfgFile == "" {
		cfgFile = filepath.Join(home, ".ssh", "config")
	}
	if cfgFile == "none" {
		return nil, nil
	}
	sc, err := loadSSHConfig(cfgFile)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: "read ssh config", Host: c.Host, Err: err}
	}
	if sc == nil {
		return nil, nil
	}
	get := func(key string) string { v, _ := sc.Get(c.Host, key); return strings.TrimSpace(v) }
	if hn := get("HostName"); hn != "" {
		t.hostname = strings.ReplaceAll(hn, "%h", c.Host)
	}
	if t.port == 0 {
		if p := get("Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return nil, &Error{Kind: KindConfig, Op: "read ssh config", Host: c.Host,
					Err: fmt.Errorf("%s: Port %q for %s is not a port number", cfgFile, p, c.Host)}
			}
			t.port = n
		}
	}
	if t.user == "" {
		t.user = get("User")
	}
	ids, _ := sc.GetAll(c.Host, "IdentityFile")
	return ids, nil
}

// expand replaces ssh_config's tokens (%d home, %u local user, %h host name, %r remote user)
// and a leading ~ in path p, as ssh does for IdentityFile and UserKnownHostsFile.
func (t target) expand(p, home string) string {
	p = strings.NewReplacer("%d", home, "%u", localUser(), "%h", t.hostname, "%r", t.user).Replace(p)
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

// loadSSHConfig parses an ssh_config file; a missing file is no error (nil config).
func loadSSHConfig(file string) (*sshconfig.Config, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc, err := sshconfig.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	return sc, nil
}

func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// ParseTarget splits "[user@]host[:port]" (IPv6 as [addr]:port or a bare address) as given to
// --host. Port 0 means "not given".
func ParseTarget(s string) (user, host string, port int, err error) {
	orig := s
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, s = s[:i], s[i+1:]
		if user == "" {
			return "", "", 0, fmt.Errorf("host %q: empty user before @; use user@host or just host", orig)
		}
	}
	host = s
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", 0, fmt.Errorf("host %q: missing ] after IPv6 address", orig)
		}
		host, s = s[1:end], s[end+1:]
		if s != "" {
			if !strings.HasPrefix(s, ":") {
				return "", "", 0, fmt.Errorf("host %q: expected :port after ]", orig)
			}
			if port, err = parsePort(s[1:]); err != nil {
				return "", "", 0, fmt.Errorf("host %q: %w", orig, err)
			}
		}
	} else if strings.Count(s, ":") == 1 {
		i := strings.Index(s, ":")
		host = s[:i]
		if port, err = parsePort(s[i+1:]); err != nil {
			return "", "", 0, fmt.Errorf("host %q: %w", orig, err)
		}
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("host %q: empty host name; use [user@]host[:port]", orig)
	}
	if strings.ContainsAny(host, " /\t") {
		return "", "", 0, fmt.Errorf("host %q: %q is not a host name", orig, host)
	}
	return user, host, port, nil
}

func parsePort(p string) (int, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return n, nil
}
