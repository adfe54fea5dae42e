package sshconn

import (
	"errors"
	"fmt"
)

// Kind classifies why a connection failed.
type Kind int

const (
	KindOther   Kind = iota
	KindNetwork      // cannot reach or lost the host: retrying later may help
	KindAuth         // the host refused every key: permanent until keys change
	KindHostKey      // host key unknown, changed or revoked: permanent, needs a human
	KindConfig       // bad local setup (unreadable key, encrypted key, bad known_hosts)
)

func (k Kind) String() string {
	switch k {
	case KindNetwork:
		return "network"
	case KindAuth:
		return "authentication"
	case KindHostKey:
		return "host key"
	case KindConfig:
		return "configuration"
	}
	return "other"
}

// Error is the error every sshconn operation returns.
type Error struct {
	Kind Kind
	Op   string // what was being done: "dial", "handshake", "load key", "keepalive"...
	Host string // host:port as dialled
	Err  error
}

func (e *Error) Error() string {
	if e.Host == "" {
		return fmt.Sprintf("ssh %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("ssh %s %s: %v", e.Op, e.Host, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or KindOther.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// Retryable reports whether trying again later could succeed (network trouble only).
func Retryable(err error) bool { return KindOf(err) == KindNetwork }
