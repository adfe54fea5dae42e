package overwrite

import (
	"errors"
	"strings"
	"testing"
)

func TestPartialNameFitsADirectoryEntry(t *testing.T) {
	if got := PartialName("disk.img"); got != "disk.img"+PartialSuffix {
		t.Fatalf("PartialName = %q", got)
	}
	long := strings.Repeat("x", 250)
	got := PartialName(long)
	if len(got) > nameMax || !strings.HasSuffix(got, PartialSuffix) || got == PartialName(long+"y") {
		t.Fatalf("PartialName of a long name = %q", got)
	}
}

func TestNotReplacedIsPartialAndNamesTheFlag(t *testing.T) {
	if Check(nil) != nil {
		t.Fatal("Check(nil) is an error")
	}
	err := Check([]string{"/etc/hosts"})
	var nr *NotReplaced
	if !errors.As(err, &nr) || nr.ExitCode() != 3 || !errors.Is(err, ErrDiffers) ||
		!strings.Contains(err.Error(), "1 existing entry differs") || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("Check = %v", err)
	}
}
