package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/store"
)

// FuzzDecodeStoreArgs: the argument decoders a server runs on every client request never panic,
// and what they accept re-encodes to the same bytes (one encoding per value).
func FuzzDecodeStoreArgs(f *testing.F) {
	f.Add(EncodeHandle(store.Handle{Kind: store.KindData, Name: "ab01"}))
	f.Add(EncodeLoadArgs(LoadArgs{Handle: store.Handle{Kind: store.KindIndex, Name: "x"}, Offset: 5, Length: -1}))
	f.Add(EncodeKind(store.KindSnapshots))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	tok := "0123456789abcdef0123456789abcdef"
	f.Add(EncodeStreamToken(tok))
	f.Add(EncodeStreamToken(""))
	f.Add(EncodeCommitStreamArgs(CommitStreamArgs{Token: tok, Handle: store.Handle{Kind: store.KindData, Name: "ab01"}}))
	f.Add(EncodeCommitStreamArgs(CommitStreamArgs{Token: strings.Repeat("x", MaxToken+1), Handle: store.Handle{Kind: store.KindIndex}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := DecodeHandle(b); err == nil && !bytes.Equal(EncodeHandle(h), b) {
			t.Fatalf("handle %q re-encodes differently", h)
		}
		if a, err := DecodeLoadArgs(b); err == nil && !bytes.Equal(EncodeLoadArgs(a), b) {
			t.Fatalf("load args %+v re-encode differently", a)
		}
		if k, err := DecodeKind(b); err == nil && !bytes.Equal(EncodeKind(k), b) {
			t.Fatalf("kind %q re-encodes differently", k)
		}
		if tok, err := DecodeStreamToken(b); err == nil && (tok == "" || len(tok) > MaxToken || !bytes.Equal(EncodeStreamToken(tok), b)) {
			t.Fatalf("stream token %q accepted or re-encoded differently", tok)
		}
		if a, err := DecodeCommitStreamArgs(b); err == nil && (a.Token == "" || len(a.Token) > MaxToken || !bytes.Equal(EncodeCommitStreamArgs(a), b)) {
			t.Fatalf("commit stream args %+v accepted or re-encoded differently", a)
		}
		if fi, err := DecodeFileInfo(b); err == nil && fi.Size < 0 {
			t.Fatalf("file info with negative size %d", fi.Size)
		}
	})
}

// TestStreamArgsRoundTrip: what one side encodes, the other decodes to the same value (the fuzz
// target checks the other direction only: bytes that decode re-encode to themselves).
func TestStreamArgsRoundTrip(t *testing.T) {
	tok := strings.Repeat("f", MaxToken)
	if got, err := DecodeStreamToken(EncodeStreamToken(tok)); err != nil || got != tok {
		t.Errorf("token round trip: %q, %v", got, err)
	}
	a := CommitStreamArgs{Token: "0123456789abcdef0123456789abcdef", Handle: store.Handle{Kind: store.KindData, Name: "ab01"}}
	if got, err := DecodeCommitStreamArgs(EncodeCommitStreamArgs(a)); err != nil || got != a {
		t.Errorf("commit stream args round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", tok + "f"} {
		if _, err := DecodeStreamToken(EncodeStreamToken(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("token of %d bytes: %v, want malformed", len(bad), err)
		}
		if _, err := DecodeCommitStreamArgs(EncodeCommitStreamArgs(CommitStreamArgs{Token: bad, Handle: a.Handle})); !errors.Is(err, ErrMalformed) {
			t.Errorf("commit with a token of %d bytes: %v, want malformed", len(bad), err)
		}
	}
}
