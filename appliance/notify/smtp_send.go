package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strings"
	"time"
)

// Mailer sends reports with one MailConfig.
type Mailer struct {
	Config MailConfig
	// Timeout bounds the whole SMTP dialogue, dial included (default 60 s): a mail server that
	// stops answering must not keep a finished backup's process alive.
	Timeout time.Duration
	// HelloName is the name given in EHLO; "" means this host's name.
	HelloName string
}

// SendReport mails the report if --mail-on asks for it; it reports whether a mail was sent.
func (m Mailer) SendReport(ctx context.Context, r Report) (bool, error) {
	if !m.Config.ShouldSend(r.Result) {
		return false, nil
	}
	html, err := r.HTML()
	if err != nil {
		return false, err
	}
	date := r.End
	if date.IsZero() {
		date = time.Now()
	}
	msg := Message{From: m.Config.From, To: m.Config.Recipients(), Subject: r.Subject(), Date: date, Text: r.Text(), HTML: html}
	if err := m.Send(ctx, msg); err != nil {
		return false, err
	}
	return true, nil
}

// Send delivers msg through the configured server: connect (implicit TLS or plain), EHLO,
// STARTTLS when asked (required, never silently skipped), AUTH when a user is set, then one
// MAIL, RCPT per recipient and DATA, each command waiting for its reply.
func (m Mailer) Send(ctx context.Context, msg Message) error {
	c := m.Config
	if err := c.Validate(); err != nil {
		return err
	}
	host, port, _ := c.hostPort()
	addr := net.JoinHostPort(host, port)
	fail := func(step string, err error) error {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("mail report to %s via %s: %s: %w", strings.Join(msg.To, ","), addr, step, err)
	}
	data, err := msg.Bytes()
	if err != nil {
		return err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	tlsConf, err := m.tlsConfig(host)
	if err != nil {
		return fail("TLS setup", err)
	}
	conn, err := m.dial(ctx, addr, timeout, tlsConf)
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	// Cancellation interrupts a blocked read or write by closing the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		return fail("greeting", err)
	}
	defer cl.Close()
	if step, err := m.deliver(cl, host, tlsConf, msg.To, data); err != nil {
		return fail(step, err)
	}
	// The message was accepted at the end of DATA; a failed QUIT loses nothing.
	_ = cl.Quit()
	return nil
}

// dial connects to the server: through TLS from the first byte for implicit TLS (port 465),
// else in the clear (STARTTLS, if asked, comes after EHLO).
func (m Mailer) dial(ctx context.Context, addr string, timeout time.Duration, tlsConf *tls.Config) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if m.Config.tlsMode() == TLSImplicit {
		return (&tls.Dialer{NetDialer: &d, Config: tlsConf}).DialContext(ctx, "tcp", addr)
	}
	return d.DialContext(ctx, "tcp", addr)
}

// deliver runs the SMTP dialogue after the greeting, up to the end of DATA. On failure it names
// the step that failed.
func (m Mailer) deliver(cl *smtp.Client, host string, tlsConf *tls.Config, to []string, data []byte) (string, error) {
	c := m.Config
	if err := cl.Hello(m.helloName()); err != nil {
		return "EHLO", err
	}
	if c.tlsMode() == TLSStartTLS {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return "STARTTLS", errors.New("server does not offer STARTTLS; use --smtp-tls=tls for port 465 or --smtp-tls=none for a trusted relay")
		}
		if err := cl.StartTLS(tlsConf); err != nil {
			return "STARTTLS", err
		}
	}
	if c.User != "" {
		if step, err := m.authenticate(cl, host); err != nil {
			return step, err
		}
	}
	// The envelope takes bare addresses; the headers keep display names ("Backup <a@b>").
	if err := cl.Mail(bareAddress(c.From)); err != nil {
		return "MAIL FROM", err
	}
	for _, rc := range to {
		if err := cl.Rcpt(bareAddress(rc)); err != nil {
			return "RCPT TO " + rc, err
		}
	}
	w, err := cl.Data()
	if err != nil {
		return "DATA", err
	}
	if _, err := w.Write(data); err != nil {
		return "DATA", err
	}
	if err := w.Close(); err != nil {
		return "DATA", err
	}
	return "", nil
}

// authenticate logs in as the configured user with the best mechanism the server offers.
func (m Mailer) authenticate(cl *smtp.Client, host string) (string, error) {
	c := m.Config
	pw, err := c.password()
	if err != nil {
		return "AUTH", err
	}
	ok, mechs := cl.Extension("AUTH")
	if !ok {
		return "AUTH", errors.New("server offers no AUTH although --smtp-user is set")
	}
	a, err := chooseAuth(mechs, c.User, pw, host)
	if err != nil {
		return "AUTH", err
	}
	if err := cl.Auth(a); err != nil {
		return "AUTH as " + c.User, err
	}
	return "", nil
}

// bareAddress returns the address part of "Name <addr>" (Validate has parsed it already).
func bareAddress(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}

func (m Mailer) tlsConfig(host string) (*tls.Config, error) {
	conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if m.Config.CAFile != "" {
		pem, err := os.ReadFile(m.Config.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read --smtp-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--smtp-ca-file %s holds no PEM certificate", m.Config.CAFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

func (m Mailer) helloName() string {
	if m.HelloName != "" {
		return m.HelloName
	}
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}
