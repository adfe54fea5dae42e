package vib

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// The ar format: "!<arch>\n", then per member a 60-byte header (name 16, mtime 12, uid 6, gid 6,
// mode 8, size 10, "`\n") and the data padded to an even length with "\n". Names are written in
// GNU style ("name/"), as GNU ar writes them and as community VIBs built on Linux carry them.
// Hand-written: it is 60 bytes of fixed-width text, and no well-kept Go module for it is on the
// module proxy list we may use.

const (
	arMagic     = "!<arch>\n"
	arHeaderLen = 60
)

type arMember struct {
	name string
	data []byte
}

// writeAr encodes members with mtime 0, owner 0/0 and mode 644 (what `ar D` writes), so the
// bytes depend only on names and contents.
func writeAr(members []arMember) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(arMagic)
	for _, m := range members {
		if len(m.name) > 15 || m.name == "" || strings.ContainsAny(m.name, "/ \n") {
			return nil, fmt.Errorf("ar member name %q: want 1 to 15 characters without '/', blanks or newlines", m.name)
		}
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", m.name+"/", 0, 0, 0, 0o644, len(m.data))
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

// readAr splits an ar archive into its members, in order. It accepts GNU ("name/") and BSD
// short ("name") names and refuses anything it cannot bound.
func readAr(b []byte) ([]arMember, error) {
	if !bytes.HasPrefix(b, []byte(arMagic)) {
		return nil, fmt.Errorf("not an ar archive (no %q at the start): %w", strings.TrimSpace(arMagic), ErrFormat)
	}
	var out []arMember
	rest := b[len(arMagic):]
	for len(rest) > 0 {
		if len(rest) == 1 && rest[0] == '\n' {
			break // a final padding byte some writers leave
		}
		if len(rest) < arHeaderLen {
			return nil, fmt.Errorf("ar member %d: header cut short (%d bytes): %w", len(out)+1, len(rest), ErrFormat)
		}
		h := rest[:arHeaderLen]
		if string(h[58:60]) != "`\n" {
			return nil, fmt.Errorf("ar member %d: bad header terminator: %w", len(out)+1, ErrFormat)
		}
		name := strings.TrimRight(string(h[:16]), " ")
		name = strings.TrimSuffix(name, "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
		if err != nil || size < 0 || size > int64(len(rest)-arHeaderLen) {
			return nil, fmt.Errorf("ar member %q: size %q does not fit the file: %w", name, strings.TrimSpace(string(h[48:58])), ErrFormat)
		}
		if name == "" || strings.ContainsAny(name, "/\x00") {
			return nil, fmt.Errorf("ar member %d: unusable name %q: %w", len(out)+1, name, ErrFormat)
		}
		out = append(out, arMember{name: name, data: rest[arHeaderLen : arHeaderLen+size]})
		rest = rest[arHeaderLen+size:]
		if size%2 == 1 && len(rest) > 0 {
			rest = rest[1:]
		}
	}
	return out, nil
}
