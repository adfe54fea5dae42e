package storespec

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadSpec is wrapped by every parse error: a usage error (exit status 2).
var ErrBadSpec = errors.New("bad store spec")

// Scheme is the kind of store a spec names.
type Scheme string

const (
	Local Scheme = "local"
	SSH   Scheme = "ssh"
	SFTP  Scheme = "sftp"
	Tape  Scheme = "tape"
	S3    Scheme = "s3"
)

// Spec is a parsed store spec.
type Spec struct {
	Scheme Scheme
	User   string // "" when not given
	Host   string // "" for Local and local tape
	Port   int    // 0 when not given
	Path   string // the folder (or tape device); "~/..." is relative to the remote home
}

// Remote reports whether the spec names another host.
func (s Spec) Remote() bool { return s.Host != "" }

// String renders the spec in the form Parse accepts.
func (s Spec) String() string {
	if s.Scheme == Local {
		return s.Path
	}
	host := s.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if s.Port != 0 {
		host += ":" + strconv.Itoa(s.Port)
	}
	if s.User != "" {
		host = s.User + "@" + host
	}
	p := s.Path
	if s.Scheme == S3 {
		return "s3://" + host + "/" + p
	}
	if strings.HasPrefix(p, "~") {
		p = "/" + p
	}
	return string(s.Scheme) + "://" + host + p
}

// Parse reads a store spec. Anything with "://" must be one of the known schemes; anything else
// is a local path.
func Parse(raw string) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("%w %q: %s", ErrBadSpec, raw, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(raw) == "" {
		return bad("empty; give a folder or ssh://[user@]host[:port]/path")
	}
	if strings.ContainsAny(raw, "\x00\n\r") {
		return bad("contains a control character")
	}
	i := strings.Index(raw, "://")
	if i < 0 {
		if strings.HasPrefix(raw, "ssh:") || strings.HasPrefix(raw, "sftp:") || strings.HasPrefix(raw, "tape:") || strings.HasPrefix(raw, "s3:") {
			return bad("write the scheme with //, e.g. ssh://host/path")
		}
		return Spec{Scheme: Local, Path: raw}, nil
	}
	scheme := Scheme(strings.ToLower(raw[:i]))
	switch scheme {
	case SSH, SFTP, Tape:
	case S3:
		return parseS3(raw, raw[i+3:])
	default:
		return bad("unknown scheme %q; use a folder, ssh://, sftp://, s3:// or tape://", raw[:i])
	}
	rest := raw[i+3:]
	slash := strings.Index(rest, "/")
	if slash < 0 {
		return bad("no path after the host; e.g. %s://host/srv/repo", scheme)
	}
	authority, p := rest[:slash], rest[slash:]
	if strings.HasPrefix(p, "/~") {
		p = p[1:]
	}
	if dec, err := url.PathUnescape(p); err == nil {
		p = dec
	}
	if p == "/" || p == "~" || p == "~/" {
		return bad("the path must name a folder below / or ~, not the root itself")
	}
	s := Spec{Scheme: scheme, Path: p}
	if authority == "" {
		if scheme != Tape {
			return bad("no host; %s://[user@]host[:port]/path", scheme)
		}
		return s, nil // tape:///dev/nst0: this host's drive
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		s.User, authority = authority[:at], authority[at+1:]
		if s.User == "" || strings.ContainsAny(s.User, ":/") {
			return bad("user %q is not a user name", s.User)
		}
	}
	if err := parseHostPort(&s, authority); err != nil {
		return bad("%v", err)
	}
	return s, nil
}

// parseHostPort sets s.Host and s.Port from HOST[:PORT] (an IPv6 address in brackets).
func parseHostPort(s *Spec, authority string) error {
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") || strings.Count(authority, ":") == 1 {
		h, pt, err := net.SplitHostPort(authority)
		if err != nil {
			if strings.HasPrefix(authority, "[") && strings.HasSuffix(authority, "]") {
				h, err = authority[1:len(authority)-1], nil
			} else {
				return fmt.Errorf("host %q: %v", authority, err)
			}
		}
		host, port = h, pt
	}
	if host == "" || strings.ContainsAny(host, " \t%") {
		return fmt.Errorf("host %q is not a host name", host)
	}
	s.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		s.Port = n
	}
	return nil
}
