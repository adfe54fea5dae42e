package notify

import (
	"fmt"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
)

// MailConfig is the e-mail settings of a job, one field per flag, as typed: --mail-to (repeat or
// comma-separate), --mail-from, --smtp=host:port, --smtp-user, --smtp-password-file,
// --smtp-tls=starttls|tls|none, --smtp-ca-file, --mail-on=always|failure. Its fields match
// cron.Mail one to one, so a stored job converts with notify.MailConfig(job.Mail).
type MailConfig struct {
	To           []string
	From         string
	Server       string
	User         string
	PasswordFile string
	TLS          string
	CAFile       string
	On           string
}

// TLS modes.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
	TLSNone     = "none"
)

// When to mail.
const (
	MailAlways    = "always"
	MailOnFailure = "failure"
)

// Enabled reports whether any recipient is configured.
func (c MailConfig) Enabled() bool { return len(c.Recipients()) > 0 }

// Recipients splits comma-separated --mail-to values and drops blanks.
func (c MailConfig) Recipients() []string {
	var out []string
	for _, v := range c.To {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

// tlsMode returns the TLS mode with its default: STARTTLS, since port 587 submission is what
// providers offer and it never sends a password in clear.
func (c MailConfig) tlsMode() string {
	if c.TLS == "" {
		return TLSStartTLS
	}
	return c.TLS
}

func (c MailConfig) mailOn() string {
	if c.On == "" {
		return MailAlways
	}
	return c.On
}

// hostPort returns the server split, with the port defaulting by TLS mode (465 for implicit TLS,
// 587 for STARTTLS, 25 without TLS).
func (c MailConfig) hostPort() (string, string, error) {
	if c.Server == "" {
		return "", "", fmt.Errorf("mail: no SMTP server; give --smtp=HOST:PORT")
	}
	host, port, err := net.SplitHostPort(c.Server)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			host, port = c.Server, map[string]string{TLSImplicit: "465", TLSStartTLS: "587", TLSNone: "25"}[c.tlsMode()]
		} else {
			return "", "", fmt.Errorf("mail: --smtp=%s: %w; give HOST:PORT", c.Server, err)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("mail: --smtp=%s: port %q is not a number from 1 to 65535", c.Server, port)
	}
	return host, port, nil
}

// Validate checks the settings without contacting anything but the password and CA files.
func (c MailConfig) Validate() error {
	if !c.Enabled() {
		if c.Server != "" || c.From != "" {
			return fmt.Errorf("mail: --smtp or --mail-from given without --mail-to")
		}
		return nil
	}
	for _, a := range c.Recipients() {
		if _, err := mail.ParseAddress(a); err != nil {
			return fmt.Errorf("mail: --mail-to %q: %w", a, err)
		}
	}
	if c.From == "" {
		return fmt.Errorf("mail: no sender; give --mail-from=ADDRESS")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("mail: --mail-from %q: %w", c.From, err)
	}
	if _, _, err := c.hostPort(); err != nil {
		return err
	}
	switch c.tlsMode() {
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return fmt.Errorf("mail: --smtp-tls=%s: use starttls, tls or none", c.TLS)
	}
	switch c.mailOn() {
	case MailAlways, MailOnFailure:
	default:
		return fmt.Errorf("mail: --mail-on=%s: use always or failure", c.On)
	}
	if (c.User == "") != (c.PasswordFile == "") {
		return fmt.Errorf("mail: --smtp-user and --smtp-password-file go together")
	}
	if c.PasswordFile != "" {
		if _, err := c.password(); err != nil {
			return err
		}
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return fmt.Errorf("mail: --smtp-ca-file: %w", err)
		}
	}
	return nil
}

// ShouldSend applies --mail-on: "failure" mails partial and failed runs only.
func (c MailConfig) ShouldSend(r Result) bool {
	if !c.Enabled() {
		return false
	}
	return c.mailOn() == MailAlways || r != Success
}

// password reads the password file: first line, without its line break. The password itself
// never enters an error message.
func (c MailConfig) password() (string, error) {
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("mail: read --smtp-password-file: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("mail: --smtp-password-file %s is empty", c.PasswordFile)
	}
	return pw, nil
}

// String describes the settings for logs, without the password (only its file is named).
func (c MailConfig) String() string {
	s := fmt.Sprintf("to=%s from=%s smtp=%s tls=%s on=%s", strings.Join(c.Recipients(), ","), c.From, c.Server, c.tlsMode(), c.mailOn())
	if c.User != "" {
		s += " user=" + c.User + " password-file=" + c.PasswordFile
	}
	return s
}
