package guestfs

import (
	"fmt"
	"strconv"
)

// lvmSection is one "name { ... }" block of LVM's metadata text. Values are string, int64,
// []any (of string and int64) or *lvmSection.
type lvmSection struct {
	keys   []string // in the order written (volume names come out in that order)
	values map[string]any
}

func (s *lvmSection) section(k string) *lvmSection {
	v, _ := s.values[k].(*lvmSection)
	return v
}

func (s *lvmSection) str(k string) string {
	v, _ := s.values[k].(string)
	return v
}

func (s *lvmSection) num(k string) (int64, bool) {
	v, ok := s.values[k].(int64)
	return v, ok
}

func (s *lvmSection) list(k string) []any {
	v, _ := s.values[k].([]any)
	return v
}

// maxLVMDepth bounds section nesting; LVM writes four levels.
const maxLVMDepth = 16

// parseLVMConfig parses LVM's metadata text format: `key = value`, `name { ... }`, values are
// "strings", integers or [lists], # starts a comment.
func parseLVMConfig(text []byte) (*lvmSection, error) {
	p := &lvmParser{s: text}
	root, err := p.body(0)
	if err != nil {
		return nil, fmt.Errorf("LVM metadata, byte %d: %w", p.i, err)
	}
	return root, nil
}

type lvmParser struct {
	s []byte
	i int
}

func (p *lvmParser) skip() {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.i++
		default:
			return
		}
	}
}

func isIdent(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c == '+' || c == '/' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// body parses entries until '}' (depth > 0) or the end of the text (depth 0).
func (p *lvmParser) body(depth int) (*lvmSection, error) {
	if depth > maxLVMDepth {
		return nil, fmt.Errorf("sections nested deeper than %d", maxLVMDepth)
	}
	s := &lvmSection{values: map[string]any{}}
	for {
		p.skip()
		if p.i >= len(p.s) {
			if depth > 0 {
				return nil, fmt.Errorf("section not closed")
			}
			return s, nil
		}
		if p.s[p.i] == '}' {
			if depth == 0 {
				return nil, fmt.Errorf("unexpected '}'")
			}
			p.i++
			return s, nil
		}
		start := p.i
		for p.i < len(p.s) && isIdent(p.s[p.i]) {
			p.i++
		}
		if p.i == start {
			return nil, fmt.Errorf("unexpected %q", p.s[p.i])
		}
		key := string(p.s[start:p.i])
		p.skip()
		if p.i >= len(p.s) {
			return nil, fmt.Errorf("%s: nothing after the name", key)
		}
		var v any
		var err error
		switch p.s[p.i] {
		case '{':
			p.i++
			v, err = p.body(depth + 1)
		case '=':
			p.i++
			p.skip()
			v, err = p.value(true)
		default:
			return nil, fmt.Errorf("%s: expected '=' or '{'", key)
		}
		if err != nil {
			return nil, err
		}
		if _, dup := s.values[key]; !dup {
			s.keys = append(s.keys, key)
		}
		s.values[key] = v
	}
}

func (p *lvmParser) value(listOK bool) (any, error) {
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("value missing")
	}
	switch c := p.s[p.i]; {
	case c == '"':
		p.i++
		var b []byte
		for p.i < len(p.s) && p.s[p.i] != '"' {
			if p.s[p.i] == '\\' && p.i+1 < len(p.s) {
				p.i++
			}
			b = append(b, p.s[p.i])
			p.i++
		}
		if p.i >= len(p.s) {
			return nil, fmt.Errorf("string not closed")
		}
		p.i++
		return string(b), nil
	case c == '[' && listOK:
		p.i++
		var l []any
		for {
			p.skip()
			if p.i >= len(p.s) {
				return nil, fmt.Errorf("list not closed")
			}
			if p.s[p.i] == ']' {
				p.i++
				return l, nil
			}
			v, err := p.value(false)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
			p.skip()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		p.i++
		for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.') {
			p.i++
		}
		n, err := strconv.ParseInt(string(p.s[start:p.i]), 10, 64)
		if err != nil {
			// A float (LVM writes none in metadata) is kept as text.
			return string(p.s[start:p.i]), nil
		}
		return n, nil
	}
	return nil, fmt.Errorf("unexpected %q in a value", p.s[p.i])
}
