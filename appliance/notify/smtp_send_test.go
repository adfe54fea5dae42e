package notify

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testPassword = "s3cret-Pa55"

func passwordFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// parts splits a delivered message into its MIME parts by content type (decoded).
func parts(t *testing.T, raw []byte) (*mail.Message, map[string]string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	out := map[string]string{}
	var order []string
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // quoted-printable is decoded by the reader
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out[ct] = string(b)
		order = append(order, ct)
	}
	if strings.Join(order, ",") != "text/plain,text/html" {
		t.Fatalf("parts %v, want text/plain then text/html", order)
	}
	for i, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line %d is %d octets, over SMTP's limit", i+1, len(line))
		}
	}
	return msg, out
}

func checkReportMail(t *testing.T, raw []byte) {
	t.Helper()
	msg, p := parts(t, raw)
	if got := msg.Header.Get("Subject"); got != "[snapferry] PARTIAL: nightly on esx01 (2 of 3 VMs ok)" {
		t.Errorf("subject %q", got)
	}
	text := strings.ReplaceAll(p["text/plain"], "\r\n", "\n")
	for _, want := range []string{
		"db <main>  hot    100.0 GiB  0 B       0 B        30s   3.3 GiB/s    failure: snapshot.create: disk locked & busy\n",
		"web01      hot    40.0 GiB   1.2 GiB   512.0 MiB  5m0s  136.5 MiB/s  success\n",
		"Repository ssh://store/repo: 42 snapshots",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plain part lacks %q:\n%s", want, text)
		}
	}
	html := p["text/html"]
	for _, want := range []string{"<td>db &lt;main&gt;</td>", "<td>136.5 MiB/s</td>", "<td>files</td>"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, html)
		}
	}
}

func TestSendReportPlainSMTP(t *testing.T) {
	srv := startSMTP(t, smtpOptions{TLS: "none"})
	m := Mailer{Config: MailConfig{To: []string{"ops@example.com, boss@example.com"}, From: "esx01@example.com", Server: srv.Addr, TLS: "none"}, Timeout: 20 * time.Second}
	sent, err := m.SendReport(context.Background(), sampleReport())
	if err != nil || !sent {
		t.Fatalf("sent %v: %v", sent, err)
	}
	raws, envs := srv.messages(t)
	if len(raws) != 1 {
		t.Fatalf("%d messages delivered", len(raws))
	}
	if envs[0].MailFrom != "esx01@example.com" || strings.Join(envs[0].RcptTos, ",") != "ops@example.com,boss@example.com" || envs[0].TLS {
		t.Fatalf("envelope %+v", envs[0])
	}
	checkReportMail(t, raws[0])
}

func TestSendReportStartTLSWithAuth(t *testing.T) {
	cert, key := writeSelfSignedCert(t)
	for _, loginOnly := range []bool{false, true} {
		srv := startSMTP(t, smtpOptions{TLS: "starttls", Cert: cert, Key: key, User: "backup", Password: testPassword, LoginOnly: loginOnly})
		cfg := MailConfig{To: []string{"ops@example.com"}, From: "esx01@example.com", Server: srv.Addr,
			TLS: "starttls", CAFile: cert, User: "backup", PasswordFile: passwordFile(t, testPassword+"\n")}
		if _, err := (Mailer{Config: cfg, Timeout: 20 * time.Second}).SendReport(context.Background(), sampleReport()); err != nil {
			t.Fatalf("login-only=%v: %v", loginOnly, err)
		}
		raws, envs := srv.messages(t)
		if len(raws) != 1 || !envs[0].TLS || envs[0].Login == nil || *envs[0].Login != "backup" {
			t.Fatalf("login-only=%v: %d messages, envelope %+v", loginOnly, len(raws), envs)
		}
		checkReportMail(t, raws[0])

		// A wrong password is refused by the server, and the error never shows a password.
		cfg.PasswordFile = passwordFile(t, "wrong-"+testPassword)
		_, err := (Mailer{Config: cfg, Timeout: 20 * time.Second}).SendReport(context.Background(), sampleReport())
		if err == nil || !strings.Contains(err.Error(), "AUTH as backup") || strings.Contains(err.Error(), testPassword) {
			t.Fatalf("wrong password: %v", err)
		}
	}
}

func TestSendReportImplicitTLS(t *testing.T) {
	cert, key := writeSelfSignedCert(t)
	srv := startSMTP(t, smtpOptions{TLS: "tls", Cert: cert, Key: key, User: "backup", Password: testPassword})
	cfg := MailConfig{To: []string{"ops@example.com"}, From: "esx01@example.com", Server: srv.Addr,
		TLS: "tls", CAFile: cert, User: "backup", PasswordFile: passwordFile(t, testPassword)}
	if _, err := (Mailer{Config: cfg, Timeout: 20 * time.Second}).SendReport(context.Background(), sampleReport()); err != nil {
		t.Fatal(err)
	}
	raws, envs := srv.messages(t)
	if len(raws) != 1 || !envs[0].TLS {
		t.Fatalf("%d messages %+v", len(raws), envs)
	}
	checkReportMail(t, raws[0])

	// Without the throwaway CA the certificate is not trusted.
	cfg.CAFile = ""
	_, err := (Mailer{Config: cfg, Timeout: 20 * time.Second}).SendReport(context.Background(), sampleReport())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
}

func TestSendRefusesWhatItShould(t *testing.T) {
	srv := startSMTP(t, smtpOptions{TLS: "none"})
	base := MailConfig{To: []string{"ops@example.com"}, From: "esx01@example.com", Server: srv.Addr}
	// STARTTLS asked (the default) but not offered: fail, never fall back to clear text.
	_, err := (Mailer{Config: base, Timeout: 20 * time.Second}).SendReport(context.Background(), sampleReport())
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("missing STARTTLS: %v", err)
	}
	// --mail-on=failure: a successful job sends nothing.
	ok := sampleReport()
	ok.Result = Success
	cfg := base
	cfg.TLS, cfg.On = "none", "failure"
	if sent, err := (Mailer{Config: cfg}).SendReport(context.Background(), ok); sent || err != nil {
		t.Fatalf("success with --mail-on=failure: sent %v err %v", sent, err)
	}
	if raws, _ := srv.messages(t); len(raws) != 0 {
		t.Fatalf("%d messages delivered", len(raws))
	}
}

// A server that accepts the connection and never greets must not hang the job.
func TestSendTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := MailConfig{To: []string{"ops@example.com"}, From: "a@example.com", Server: ln.Addr().String(), TLS: "none"}
	start := time.Now()
	_, err = (Mailer{Config: cfg, Timeout: 500 * time.Millisecond}).SendReport(context.Background(), sampleReport())
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("silent server: err %v after %s", err, time.Since(start))
	}
}

func TestMailConfigValidate(t *testing.T) {
	pw := passwordFile(t, testPassword)
	good := MailConfig{To: []string{"ops@example.com"}, From: "a@example.com", Server: "mail.example.com", User: "u", PasswordFile: pw}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if h, p, _ := good.hostPort(); h != "mail.example.com" || p != "587" {
		t.Fatalf("default port %s:%s", h, p)
	}
	if s := good.String(); strings.Contains(s, testPassword) || !strings.Contains(s, "password-file="+pw) {
		t.Fatalf("String() %q", s)
	}
	for name, mutate := range map[string]func(*MailConfig){
		"bad to":       func(c *MailConfig) { c.To = []string{"not an address"} },
		"no from":      func(c *MailConfig) { c.From = "" },
		"bad tls":      func(c *MailConfig) { c.TLS = "ssl" },
		"bad on":       func(c *MailConfig) { c.On = "sometimes" },
		"bad port":     func(c *MailConfig) { c.Server = "mail:99999" },
		"user no file": func(c *MailConfig) { c.PasswordFile = "" },
		"missing file": func(c *MailConfig) { c.PasswordFile = "/nonexistent/pw" },
		"empty file":   func(c *MailConfig) { c.PasswordFile = passwordFile(t, "\n") },
		"no server":    func(c *MailConfig) { c.Server = "" },
	} {
		c := good
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), testPassword) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
	if (MailConfig{}).Validate() != nil || (MailConfig{}).ShouldSend(Failure) {
		t.Error("no recipients: valid and silent")
	}
}
