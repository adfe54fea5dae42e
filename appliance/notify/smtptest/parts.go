package smtptest

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
)

// Parts parses a delivered multipart/alternative message into its header and its parts' decoded
// bodies by content type. It fails the test unless the parts are text/plain then text/html and
// every line stays within SMTP's 998-octet limit.
func Parts(t testing.TB, raw []byte) (*mail.Message, map[string]string) {
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
		b, err := io.ReadAll(p) // quoted-printable is decoded by the reader
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out[ct] = strings.ReplaceAll(string(b), "\r\n", "\n")
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
