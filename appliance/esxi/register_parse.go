package esxi

import (
	"fmt"
	"strings"
)

// ParseRegister parses `vim-cmd solo/registervm`: newer hosts print the new Vmid, older hosts
// nothing (id ""), failures a fault block.
func ParseRegister(out string) (string, error) {
	if f := ParseFault(out); f != nil {
		return "", fmt.Errorf("parse registervm output: %w", f)
	}
	t := strings.TrimSpace(out)
	if t == "" {
		return "", nil
	}
	for _, r := range t {
		if r < '0' || r > '9' {
			return "", fmt.Errorf("parse registervm output: %q is not a VM id", oneLine(t))
		}
	}
	return t, nil
}
