package main

import (
	"fmt"
	"strings"
)

// plural is "1 snapshot", "2 snapshots": n and noun, with an s unless n is 1. Nouns whose plural
// is not noun+"s" give it after a slash: plural(n, "entry/entries").
func plural(n int, noun string) string {
	one, many, irregular := strings.Cut(noun, "/")
	if !irregular {
		many = one + "s"
	}
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
