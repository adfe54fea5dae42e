package notify

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
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
)

// debianPython is Debian's interpreter: python3-aiosmtpd is installed for it, not for any other
// python3 that may come first on PATH.
const debianPython = "/usr/bin/python3"

// smtpServer is a real aiosmtpd server run by the test (testdata/smtp_server.py).
type smtpServer struct {
	Addr string
	Dir  string
}

type smtpOptions struct {
	TLS            string // none, starttls, tls
	Cert, Key      string
	User, Password string
	LoginOnly      bool
}

// startSMTP starts the server, skipping locally (failing under CI) without python3-aiosmtpd.
func startSMTP(t *testing.T, o smtpOptions) smtpServer {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import aiosmtpd").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-aiosmtpd is required under CI (install it in .ci/run): %v", err)
		}
		t.Skipf("python3-aiosmtpd not installed for %s: %v", debianPython, err)
	}
	dir := t.TempDir()
	args := []string{"-W", "ignore::UserWarning", "testdata/smtp_server.py", "--dir", dir, "--tls", o.TLS}
	if o.TLS == "" {
		args[len(args)-1] = "none"
	}
	if o.Cert != "" {
		args = append(args, "--cert", o.Cert, "--key", o.Key)
	}
	if o.User != "" {
		args = append(args, "--user", o.User, "--password", o.Password)
	}
	if o.LoginOnly {
		args = append(args, "--login-only")
	}
	cmd := exec.Command(debianPython, args...)
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
		return smtpServer{Addr: "127.0.0.1:" + port, Dir: dir}
	case <-time.After(20 * time.Second):
		t.Fatal("SMTP server not ready after 20 s")
	}
	return smtpServer{}
}

type envelope struct {
	MailFrom string   `json:"mail_from"`
	RcptTos  []string `json:"rcpt_tos"`
	TLS      bool     `json:"tls"`
	Login    *string  `json:"login"`
}

// messages returns the saved messages (raw bytes) and their envelopes, in arrival order.
func (s smtpServer) messages(t *testing.T) ([][]byte, []envelope) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.Dir, "msg-*.eml"))
	var raws [][]byte
	var envs []envelope
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e envelope
		b, err := os.ReadFile(strings.TrimSuffix(f, ".eml") + ".json")
		if err != nil || json.Unmarshal(b, &e) != nil {
			t.Fatalf("envelope of %s: %v", f, err)
		}
		raws = append(raws, raw)
		envs = append(envs, e)
	}
	return raws, envs
}

// writeSelfSignedCert makes a throwaway certificate for 127.0.0.1 that also serves as the CA
// file the client trusts.
func writeSelfSignedCert(t *testing.T) (certFile, keyFile string) {
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
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}
