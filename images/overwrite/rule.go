package overwrite

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrDiffers marks an existing entry whose content differs from what a restore would write,
// kept because the caller did not ask to overwrite.
var ErrDiffers = errors.New("exists and differs from the snapshot: kept (pass --overwrite to replace it)")

// PartialSuffix ends the temporary name of an entry being restored.
const PartialSuffix = ".snapferry-partial"

// nameMax is NAME_MAX on Linux and VMFS: the longest file name a directory entry can hold.
const nameMax = 255

// PartialName is the temporary name an entry called name is written under before it is
// renamed to name. It sits in the same directory (so the rename is atomic) and says what it
// is; a name too long to take the suffix gets a short one derived from a hash of it.
func PartialName(name string) string {
	if len(name)+len(PartialSuffix) <= nameMax {
		return name + PartialSuffix
	}
	sum := sha256.Sum256([]byte(name))
	return "." + hex.EncodeToString(sum[:8]) + PartialSuffix
}

// NotReplaced is the error of a restore that finished but kept existing entries that differ
// from the snapshot. Paths names them; Msg, when set, is the whole message instead of the
// generic one (a VM restore says what it found and offers --name too).
type NotReplaced struct {
	Paths []string
	Msg   string
}

func (e *NotReplaced) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	what, verb, was := "entry", "differs", "was"
	if len(e.Paths) != 1 {
		what, verb, was = "entries", "differ", "were"
	}
	shown := e.Paths
	more := ""
	if len(shown) > listMax {
		shown, more = shown[:listMax], fmt.Sprintf(" and %d more", len(e.Paths)-listMax)
	}
	return fmt.Sprintf("%d existing %s %s from the snapshot and %s kept (%s%s): pass --overwrite to replace them",
		len(e.Paths), what, verb, was, strings.Join(shown, ", "), more)
}

// listMax is how many paths the message of NotReplaced names; a caller that wants all of them
// lists Paths itself.
const listMax = 10

// Listed reports whether the message of a NotReplaced for n paths names them all.
func Listed(n int) bool { return n <= listMax }

// ExitCode makes the run partial (exit 3), as documented for restores.
func (e *NotReplaced) ExitCode() int { return 3 }

// Unwrap lets errors.Is(err, ErrDiffers) find it.
func (e *NotReplaced) Unwrap() error { return ErrDiffers }

// Check returns a *NotReplaced for paths, or nil when there are none.
func Check(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	return &NotReplaced{Paths: paths}
}
