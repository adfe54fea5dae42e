package main

import (
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
)

// excludeMatcher turns --exclude patterns into tree.Options.Exclude. A pattern with a slash
// matches the whole absolute path (shell glob, `*` not crossing `/`); one without matches the
// entry's base name anywhere ("*.tmp", ".cache"). A pattern ending in "/" matches directories only.
func excludeMatcher(patterns []string) (func(path string, n *repo.Node) bool, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	for _, p := range patterns {
		if _, err := filepath.Match(strings.TrimSuffix(p, "/"), ""); err != nil {
			return nil, usagef("--exclude=%q: %v", p, err)
		}
	}
	return func(path string, n *repo.Node) bool {
		for _, p := range patterns {
			dirOnly := strings.HasSuffix(p, "/")
			p = strings.TrimSuffix(p, "/")
			if dirOnly && n.Type != repo.NodeDir {
				continue
			}
			subject := filepath.Base(path)
			if strings.Contains(p, "/") {
				subject = path
			}
			if ok, _ := filepath.Match(p, subject); ok {
				return true
			}
		}
		return false
	}, nil
}
