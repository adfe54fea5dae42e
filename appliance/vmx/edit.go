package vmx

import "strings"

// Edit returns .vmx (or .vmsd) text with the keys in set given new values and the keys drop
// matches removed. Keys match in any case; a key set but missing is appended. Every other line
// stays byte for byte, so an edited file differs from the original only where it must.
func Edit(text string, set map[string]string, drop func(lowerKey string) bool) string {
	pending := make(map[string]string, len(set))
	var order []string
	for k, v := range set {
		lk := strings.ToLower(k)
		if _, dup := pending[lk]; !dup {
			order = append(order, k)
		}
		pending[lk] = v
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		lk := strings.ToLower(strings.TrimSpace(k))
		if ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			if drop != nil && drop(lk) {
				continue
			}
			if v, hit := pending[lk]; hit {
				b.WriteString(strings.TrimSpace(k) + " = " + EncodeValue(v) + "\n")
				delete(pending, lk)
				continue
			}
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	for _, k := range order {
		if v, hit := pending[strings.ToLower(k)]; hit {
			b.WriteString(k + " = " + EncodeValue(v) + "\n")
			delete(pending, strings.ToLower(k))
		}
	}
	return b.String()
}
