package notify

import (
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
)

// authAllowed refuses to send a password over a connection without TLS, except to a loopback
// relay (the same rule as net/smtp's PlainAuth), so a misconfigured --smtp-tls=none cannot leak
// the password onto the network.
func authAllowed(server *smtp.ServerInfo, host string) error {
	if server.TLS {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("refusing to send the SMTP password without TLS; use --smtp-tls=starttls or tls")
}

// plainAuth is AUTH PLAIN (RFC 4616).
type plainAuth struct{ user, password, host string }

func (a plainAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if err := authAllowed(server, a.host); err != nil {
		return "", nil, err
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("AUTH PLAIN: unexpected server challenge")
	}
	return nil, nil
}

// loginAuth is the older AUTH LOGIN, still the only mechanism of some relays: the server asks
// for the user name and then the password. Servers word the prompts differently ("Username:",
// "User Name"), so the prompt is read when it says which it wants and the order decides
// otherwise.
type loginAuth struct {
	user, password, host string
	step                 *int
}

func (a loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if err := authAllowed(server, a.host); err != nil {
		return "", nil, err
	}
	*a.step = 0
	return "LOGIN", nil, nil
}

func (a loginAuth) Next(challenge []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	*a.step++
	prompt := strings.ToLower(string(challenge))
	switch {
	case strings.Contains(prompt, "pass"):
		return []byte(a.password), nil
	case strings.Contains(prompt, "user"):
		return []byte(a.user), nil
	case *a.step == 1:
		return []byte(a.user), nil
	case *a.step == 2:
		return []byte(a.password), nil
	}
	// The challenge is the server's text, not ours: safe to show.
	return nil, fmt.Errorf("AUTH LOGIN: unexpected server challenge %q", challenge)
}

// chooseAuth picks PLAIN when offered, else LOGIN, from the AUTH extension's parameter.
func chooseAuth(mechanisms, user, password, host string) (smtp.Auth, error) {
	offered := strings.Fields(strings.ToUpper(mechanisms))
	has := func(m string) bool {
		for _, o := range offered {
			if o == m {
				return true
			}
		}
		return false
	}
	switch {
	case has("PLAIN"):
		return plainAuth{user, password, host}, nil
	case has("LOGIN"):
		return loginAuth{user: user, password: password, host: host, step: new(int)}, nil
	}
	return nil, fmt.Errorf("server offers AUTH %q but not PLAIN or LOGIN", mechanisms)
}
