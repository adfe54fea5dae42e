package sshconn

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// AcceptFlag is the command-line flag that tells Dial to trust a host seen for the first time.
const AcceptFlag = "--accept-new-host-key"

// HostKeyError says why a host key was refused. It is always wrapped in an *Error of KindHostKey.
type HostKeyError struct {
	Host        string // host as written to known_hosts: "name" or "[name]:port"
	KnownHosts  string // the file consulted
	Fingerprint string // SHA256 fingerprint of the key the host presented
	KeyType     string
	Changed     bool // the file has other keys for this host
	Revoked     bool // the key is marked @revoked
	Lines       []int
}

func (e *HostKeyError) Error() string {
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key %s %s of %s is marked @revoked in %s; refusing to connect",
			e.KeyType, e.Fingerprint, e.Host, e.KnownHosts)
	case e.Changed:
		return fmt.Sprintf("HOST KEY OF %s HAS CHANGED: it now presents %s %s, which does not match "+
			"%s line(s) %v. Someone may be intercepting the connection, or the host was reinstalled. "+
			"Check the new fingerprint with the host's administrator; if the change is expected, "+
			"remove the old entry with `ssh-keygen -R '%s' -f %s` and connect again with %s",
			e.Host, e.KeyType, e.Fingerprint, e.KnownHosts, e.Lines, e.Host, e.KnownHosts, AcceptFlag)
	}
	return fmt.Sprintf("host %s is not in %s; it presents %s key %s. Check that fingerprint "+
		"with the host's administrator (on the host: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), "+
		"then rerun with %s to add it", e.Host, e.KnownHosts, e.KeyType, e.Fingerprint,
		shortType(e.KeyType), AcceptFlag)
}

func shortType(t string) string {
	switch t {
	case ssh.KeyAlgoED25519:
		return "ed25519"
	case ssh.KeyAlgoRSA:
		return "rsa"
	}
	return "ecdsa"
}

// hostKeyChecker verifies host keys against one known_hosts file and appends accepted new keys.
type hostKeyChecker struct {
	file   string
	accept bool
	mu     sync.Mutex // serializes appends from concurrent Dials in one process
}

// database loads the file; a missing file is an empty database.
func (h *hostKeyChecker) database() (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(h.file)
	if errors.Is(err, fs.ErrNotExist) {
		return func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read known_hosts %s: %w", h.file, err)
	}
	return cb, nil
}

// knownAlgorithms returns the host key algorithms to offer for addr: those of the keys already
// known, so the server presents a key we can compare. Nil means no key is known (any will do).
func (h *hostKeyChecker) knownAlgorithms(addr string) ([]string, error) {
	cb, err := h.database()
	if err != nil {
		return nil, err
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var keyErr *knownhosts.KeyError
	if err := cb(addr, &net.TCPAddr{}, probe); !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
		return nil, nil
	}
	var algos []string
	for _, k := range keyErr.Want {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos, nil
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		// SHA-1 ssh-rsa last: only very old hosts still sign with it.
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// check is the ssh.HostKeyCallback.
func (h *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	cb, err := h.database()
	if err != nil {
		return &Error{Kind: KindConfig, Op: "read known_hosts", Host: hostname, Err: err}
	}
	err = cb(hostname, remote, key)
	if err == nil {
		return nil
	}
	he := &HostKeyError{Host: knownhosts.Normalize(hostname), KnownHosts: h.file,
		Fingerprint: ssh.FingerprintSHA256(key), KeyType: key.Type()}
	var revoked *knownhosts.RevokedError
	if errors.As(err, &revoked) {
		he.Revoked = true
		return he
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return &Error{Kind: KindConfig, Op: "check host key", Host: hostname,
			Err: fmt.Errorf("against %s: %w", h.file, err)}
	}
	if len(keyErr.Want) > 0 {
		he.Changed = true
		for _, w := range keyErr.Want {
			he.Lines = append(he.Lines, w.Line)
		}
		return he
	}
	if !h.accept {
		return he
	}
	if err := h.appendKey(hostname, key); err != nil {
		return &Error{Kind: KindConfig, Op: "accept new host key", Host: hostname, Err: err}
	}
	return nil
}

func (h *hostKeyChecker) appendKey(hostname string, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(h.file), 0o700); err != nil {
		return fmt.Errorf("add host key to %s: %w", h.file, err)
	}
	f, err := os.OpenFile(h.file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("add host key to %s: %w", h.file, err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if endsWithoutNewline(f) {
		line = "\n" + line // a hand-edited file may lack the final newline
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("add host key to %s: %w", h.file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("add host key to %s: %w", h.file, err)
	}
	return nil
}

func endsWithoutNewline(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, st.Size()-1); err != nil {
		return false
	}
	return b[0] != '\n'
}
