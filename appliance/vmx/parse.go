package vmx

import (
	"fmt"
	"strconv"
	"strings"
)

// File is a parsed .vmx (or .vmsd: the same `key = "value"` syntax). Keys are case-insensitive on
// ESXi, so lookups use lower case; Keys keeps the file's order and spelling.
type File struct {
	Keys   []string          // keys as written, in file order
	Values map[string]string // lower-case key -> decoded value
}

// Get returns the value of a key (any case) and whether it is set.
func (v *File) Get(key string) (string, bool) {
	s, ok := v.Values[strings.ToLower(key)]
	return s, ok
}

// Value returns the value of a key, "" when unset.
func (v *File) Value(key string) string { s, _ := v.Get(key); return s }

// True reports a boolean key set to "TRUE" (any case).
func (v *File) True(key string) bool { return strings.EqualFold(v.Value(key), "true") }

// Parse parses `key = "value"` lines. Blank lines and '#' comments are skipped; unquoted values
// are accepted; "|XX" hex escapes (how VMware writes '"', '|' and control characters) are decoded.
// A later duplicate key wins, as in VMware's own reader.
func Parse(text string) (*File, error) {
	v := &File{Values: map[string]string{}}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		eq := strings.IndexByte(t, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("parse vmx line %d %q: want key = \"value\"", n+1, line)
		}
		key := strings.TrimSpace(t[:eq])
		raw := strings.TrimSpace(t[eq+1:])
		if strings.ContainsAny(key, " \t\"") {
			return nil, fmt.Errorf("parse vmx line %d %q: key %q has blanks or quotes", n+1, line, key)
		}
		if strings.HasPrefix(raw, `"`) {
			end := strings.LastIndexByte(raw, '"')
			if end == 0 {
				return nil, fmt.Errorf("parse vmx line %d %q: unterminated quoted value", n+1, line)
			}
			raw = raw[1:end]
		}
		lk := strings.ToLower(key)
		if _, dup := v.Values[lk]; !dup {
			v.Keys = append(v.Keys, key)
		}
		v.Values[lk] = decodeValue(raw)
	}
	return v, nil
}

// decodeValue turns "|22" into '"' and so on; a '|' not followed by two hex digits stays.
func decodeValue(s string) string {
	if !strings.Contains(s, "|") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '|' && i+2 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(c))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// EncodeValue quotes a value the way VMware writes it: '"', '|', '#' and control characters as
// "|XX". Parse(EncodeValue(s)) gives s back.
func EncodeValue(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '|' || c == '#' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "|%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}
