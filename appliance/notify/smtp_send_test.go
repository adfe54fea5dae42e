package notify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/notify/smtptest"
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

func checkReportMail(t *testing.T, raw []byte) {
	t.Helper()
	msg, p := smtptest.Parts(t, raw)
	if got := msg.Header.Get("Subject"); got != "[snapferry] PARTIAL: nightly on esx01 (2 of 3 sources ok)" {
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
	srv := smtptest.Start(t, smtptest.Options{TLS: "none"})
	m := Mailer{Config: MailConfig{To: []string{"ops@example.com, Boss <boss@example.com>"}, From: "Backup on esx01 <esx01@example.com>", Server: srv.Addr, TLS: "none"}, Timeout: 20 * time.Second}
	sent, err := m.SendReport(context.Background(), sampleReport())
	if err != nil || !sent {
		t.Fatalf("sent %v: %v", sent, err)
	}
	got := srv.Messages(t)
	if len(got) != 1 {
		t.Fatalf("%d messages delivered", len(got))
	}
	if e := got[0].Envelope; e.MailFrom != "esx01@example.com" || strings.Join(e.RcptTos, ",") != "ops@example.com,boss@example.com" || e.TLS {
		t.Fatalf("envelope %+v", e)
	}
	checkReportMail(t, got[0].Raw)
	hdr, _ := smtptest.Parts(t, got[0].Raw)
	if hdr.Header.Get("From") != `"Backup on esx01" <esx01@example.com>` || hdr.Header.Get("To") != `<ops@example.com>, "Boss" <boss@example.com>` ||
		!strings.HasSuffix(hdr.Header.Get("Message-ID"), "@example.com>") || hdr.Header.Get("Date") != "Sun, 22 Nov 2026 02:41:13 +0000" {
		t.Fatalf("headers %v", hdr.Header)
	}
}

func TestSendReportStartTLSWithAuth(t *testing.T) {
	cert, key := smtptest.SelfSignedCert(t)
	for _, loginOnly := range []bool{false, true} {
		srv := smtptest.Start(t, smtptest.Options{TLS: "starttls", Cert: cert, Key: key, User: "backup", Password: testPassword, LoginOnly: loginOnly})
		cfg := MailConfig{To: []string{"ops@example.com"}, From: "esx01@example.com", Server: srv.Addr,
			TLS: "starttls", CAFile: cert, User: "backup", PasswordFile: passwordFile(t, testPassword+"\n")}
		if _, err := (Mailer{Config: cfg, Timeout: 20 * time.Second}).SendReport(context.Background(), sampleReport()); err != nil {
			t.Fatalf("login-only=%v: %v", loginOnly, err)
		}
		got := srv.Messages(t)
		if len(got) != 1 || !got[0].Envelope.TLS || got[0].Envelope.Login == nil || *got[0].Envelope.Login != "backup" {
			t.Fatalf("login-only=%v: %d messages, %+v", loginOnly, len(got), got)
		}
		checkReportMail(t, got[0].Raw)

		// A wrong password is refused by the server, and the error never shows a password.
		cfg.PasswordFile = passwordFile(t, "wrong-"+testPassword)
		_, err := (Mailer{Config: cfg, Timeout: 20 * time.Second}).SendReport(context.Background(), sampleReport())
		if err == nil || !strings.Contains(err.Error(), "AUTH as backup") || strings.Contains(err.Error(), testPassword) {
			t.Fatalf("wrong password: %v", err)
		}
	}
}

func TestSendReportImplicitTLS(t *testing.T) {
	cert, key := smtptest.SelfSignedCert(t)
	srv := smtptest.Start(t, smtptest.Options{TLS: "tls", Cert: cert, Key: key, User: "backup", Password: testPassword})
	cfg := MailConfig{To: []string{"ops@example.com"}, From: "esx01@example.com", Server: srv.Addr,
		TLS: "tls", CAFile: cert, User: "backup", PasswordFile: passwordFile(t, testPassword)}
	if _, err := (Mailer{Config: cfg, Timeout: 20 * time.Second}).SendReport(context.Background(), sampleReport()); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages(t)
	if len(got) != 1 || !got[0].Envelope.TLS {
		t.Fatalf("%d messages %+v", len(got), got)
	}
	checkReportMail(t, got[0].Raw)

	// Without the throwaway CA the certificate is not trusted.
	cfg.CAFile = ""
	_, err := (Mailer{Config: cfg, Timeout: 20 * time.Second}).SendReport(context.Background(), sampleReport())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
}

func TestSendRefusesWhatItShould(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: "none"})
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
	if got := srv.Messages(t); len(got) != 0 {
		t.Fatalf("%d messages delivered", len(got))
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
