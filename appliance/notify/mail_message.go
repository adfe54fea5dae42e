package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// Message is an e-mail ready for the SMTP DATA command.
type Message struct {
	From    string
	To      []string
	Subject string
	Date    time.Time
	Text    string
	HTML    string
}

// Bytes renders the message as multipart/alternative (plain text first, HTML second, so
// clients that can show HTML prefer it) with CRLF line ends and quoted-printable bodies, which
// keeps every line under SMTP's 1000-octet limit whatever the report holds.
func (m Message) Bytes() ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ ctype, text string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", part.ctype)
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, fmt.Errorf("build mail %q: %w", m.Subject, err)
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.text, "\n", "\r\n"))); err != nil {
			return nil, fmt.Errorf("build mail %q: %w", m.Subject, err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("build mail %q: %w", m.Subject, err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("build mail %q: %w", m.Subject, err)
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("build mail %q: message id: %w", m.Subject, err)
	}
	domain := "snapferry.invalid"
	if a, err := mail.ParseAddress(m.From); err == nil {
		if at := strings.LastIndexByte(a.Address, '@'); at >= 0 {
			domain = a.Address[at+1:]
		}
	}
	var out bytes.Buffer
	for _, h := range [][2]string{
		{"From", headerAddress(m.From)},
		{"To", headerAddresses(m.To)},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", formatDate(m.Date)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "multipart/alternative; boundary=" + mw.Boundary()},
		{"X-Mailer", "snapferry"},
	} {
		if strings.ContainsAny(h[1], "\r\n") {
			return nil, fmt.Errorf("build mail: header %s contains a line break", h[0])
		}
		out.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	out.WriteString("\r\n")
	out.Write(body.Bytes())
	return out.Bytes(), nil
}

// headerAddress formats an address for a header, quoting and encoding the display name
// (RFC 5322 and 2047) so a name with commas or accents survives every mail client.
func headerAddress(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.String()
	}
	return s
}

func headerAddresses(list []string) string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = headerAddress(s)
	}
	return strings.Join(out, ", ")
}
