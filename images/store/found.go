package store

import (
	"fmt"
	"path"
	"strings"
)

// foundLimit bounds how many files Found counts: enough to tell "740 files" from "more than",
// without walking a whole file server before refusing.
const foundLimit = 100_000

// Found summarises what a location holds, for Create, which accepts only a missing or empty
// folder (empty folders inside do not count: an interrupted init leaves them). Every
// folder-based backend walks its location with Add and asks Refusal.
type Found struct {
	Config bool // a config file at the root: a repository
	Packs  int  // files below data/
	Files  int  // every file, up to foundLimit
}

// Add counts one file at rel, slash-separated below the root. It returns false once enough
// files are counted to stop walking.
func (f *Found) Add(rel string) bool {
	rel = path.Clean(strings.TrimPrefix(rel, "/"))
	switch {
	case rel == "config":
		f.Config = true
	case strings.HasPrefix(rel, string(KindData)+"/"):
		f.Packs++
	}
	f.Files++
	return f.Files < foundLimit
}

// Refusal is nil for an empty location, else one line saying what is there, wrapping ErrExist.
func (f Found) Refusal(location string) error {
	switch {
	case f.Files == 0:
		return nil
	case f.Config:
		return fmt.Errorf("a repository already exists in %s: %w", location, ErrExist)
	case f.Packs > 0:
		return fmt.Errorf("%s holds %s but no config: looks like a repository whose config was lost; refusing "+
			"(put the config back from a copy; a new one would make the packs unreadable): %w", location, count(f.Packs, "pack"), ErrExist)
	}
	n := count(f.Files, "file")
	if f.Files >= foundLimit {
		n = "more than " + n
	}
	return fmt.Errorf("%s is not empty (%s): init needs a missing or empty folder; choose another: %w", location, n, ErrExist)
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
