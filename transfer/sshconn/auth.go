package sshconn

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// signerSet is what the client may authenticate with, and where each key came from (for the
// message when the host accepts none of them).
type signerSet struct {
	signers []ssh.Signer
	sources []string
	agent   net.Conn // open while the handshake may still ask the agent to sign
}

func (s *signerSet) close() {
	if s.agent != nil {
		s.agent.Close()
	}
}

// loadSigners reads the key files and asks the agent for its keys. The key files come first:
// they are what the user named.
func loadSigners(t target) (*signerSet, error) {
	set := &signerSet{}
	for _, file := range t.identities {
		signer, err := loadKeyFile(file)
		if errors.Is(err, fs.ErrNotExist) && !t.explicitID {
			continue // OpenSSH too skips default and config key files that do not exist
		}
		if err != nil {
			return nil, &Error{Kind: KindConfig, Op: "load key", Host: t.addr(), Err: err}
		}
		set.signers = append(set.signers, signer)
		set.sources = append(set.sources, file)
	}
	if t.agentSock != "" {
		conn, err := net.Dial("unix", t.agentSock)
		if err != nil {
			// A stale SSH_AUTH_SOCK is common in cron and screen sessions; the key files may
			// still do, so this is only fatal when there is nothing else (see Dial).
			set.sources = append(set.sources, fmt.Sprintf("agent %s unreachable: %v", t.agentSock, err))
		} else {
			keys, err := agent.NewClient(conn).Signers()
			if err != nil {
				conn.Close()
				return nil, &Error{Kind: KindConfig, Op: "list agent keys", Host: t.addr(),
					Err: fmt.Errorf("agent %s: %w", t.agentSock, err)}
			}
			set.agent = conn
			set.signers = append(set.signers, keys...)
			set.sources = append(set.sources, fmt.Sprintf("agent %s (%d keys)", t.agentSock, len(keys)))
		}
	}
	if len(set.signers) == 0 {
		set.close()
		return nil, &Error{Kind: KindConfig, Op: "load key", Host: t.addr(), Err: fmt.Errorf(
			"no usable private key (tried %s); pass --identity=FILE or run ssh-agent",
			strings.Join(append(t.identities, set.sources...), ", "))}
	}
	return set, nil
}

func loadKeyFile(file string) (ssh.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("key %s is protected by a passphrase, which snapferry cannot type "+
			"(it runs unattended); load it into ssh-agent with `ssh-add %s` or use a key without passphrase", file, file)
	case err != nil && isPublicKey(b):
		return nil, fmt.Errorf("key %s is a public key; pass the private key file (without .pub)", file)
	case err != nil:
		return nil, fmt.Errorf("parse key %s: %w", file, err)
	}
	return signer, nil
}

func isPublicKey(b []byte) bool {
	_, _, _, _, err := ssh.ParseAuthorizedKey(b)
	return err == nil
}
