package smtptest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
)

// Python is Debian's interpreter: python3-aiosmtpd is installed for it, not for any other
// python3 that may come first on PATH.
const Python = "/usr/bin/python3"

//go:embed testdata/smtp_server.py
var serverScript []byte

// Options choose the server's security.
type Options struct {
	TLS            string // "none" (default), "starttls" (offered and required) or "tls" (implicit)
	Cert, Key      string // PEM files, needed for the TLS modes (see SelfSignedCert)
	User, Password string // require AUTH with these
	LoginOnly      bool   // offer AUTH LOGIN only
}

// Server is a running server; it stops when the test ends.
type Server struct {
	Addr string // 127.0.0.1:PORT
	Dir  string // where messages are saved
}

// Envelope is what the server saw besides the message.
type Envelope struct {
	MailFrom string   `json:"mail_from"`
	RcptTos  []string `json:"rcpt_tos"`
	TLS      bool     `json:"tls"`
	Login    *string  `json:"login"` // the authenticated user, nil without AUTH
}

// Delivered is one saved message.
type Delivered struct {
	Raw      []byte
	Envelope Envelope
}

// Start runs a server for the rest of the test.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	err := exec.Command(Python, "-c", "import aiosmtpd").Run()
	testkit.Require(t, err == nil, "python3-aiosmtpd not installed for %s: %v", Python, err)
	dir := t.TempDir()
	script := filepath.Join(t.TempDir(), "smtp_server.py")
	if err := os.WriteFile(script, serverScript, 0o644); err != nil {
		t.Fatal(err)
	}
	if o.TLS == "" {
		o.TLS = "none"
	}
	// aiosmtpd warns about AUTH on implicit TLS, which the test set-up does on purpose.
	args := []string{"-W", "ignore::UserWarning", script, "--dir", dir, "--tls", o.TLS}
	if o.Cert != "" {
		args = append(args, "--cert", o.Cert, "--key", o.Key)
	}
	if o.User != "" {
		args = append(args, "--user", o.User, "--password", o.Password)
	}
	if o.LoginOnly {
		args = append(args, "--login-only")
	}
	cmd := exec.Command(Python, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- port
				return
			}
		}
		close(ready)
	}()
	select {
	case port, ok := <-ready:
		if !ok {
			t.Fatal("SMTP server exited before it was ready")
		}
		return &Server{Addr: "127.0.0.1:" + port, Dir: dir}
	case <-time.After(20 * time.Second):
		t.Fatal("SMTP server not ready after 20 s")
	}
	return nil
}

// Messages returns the messages delivered so far, in arrival order.
func (s *Server) Messages(t testing.TB) []Delivered {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.Dir, "msg-*.eml"))
	var out []Delivered
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := Delivered{Raw: raw}
		b, err := os.ReadFile(strings.TrimSuffix(f, ".eml") + ".json")
		if err != nil {
			t.Fatalf("envelope of %s: %v", f, err)
		}
		if err := json.Unmarshal(b, &d.Envelope); err != nil {
			t.Fatalf("envelope of %s: %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

// SelfSignedCert writes a throwaway certificate for 127.0.0.1 and localhost that is its own CA,
// so the same file serves the server and the client's CA option.
func SelfSignedCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "snapferry test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
