package sim

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/internal/reftext"
)

// newTestHost makes a host in a temp folder with the given datastores (VMFS-6 unless the name
// says "vmfs5" or "nfs").
func newTestHost(t *testing.T, datastores ...string) *Host {
	t.Helper()
	h, err := NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range datastores {
		typ := "VMFS-6"
		switch {
		case strings.Contains(d, "vmfs5"):
			typ = "VMFS-5"
		case strings.Contains(d, "nfs"):
			typ = "NFS"
		}
		if err := h.AddDatastore(d, DatastoreOptions{Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// run calls a personality like a process would and returns stdout, stderr and the exit status.
func run(h *Host, env map[string]string, name string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	// A copy, so concurrent runs with different environments share no field.
	hc := *h
	hc.Getenv = func(k string) string { return env[k] }
	code := hc.Exec(name, args, &out, &errb)
	return out.String(), errb.String(), code
}

// mustRun is run that fails the test on a non-zero exit status.
func mustRun(t *testing.T, h *Host, name string, args ...string) string {
	t.Helper()
	out, errs, code := run(h, nil, name, args...)
	if code != 0 {
		t.Fatalf("%s %q: exit %d\nstdout: %s\nstderr: %s", name, args, code, out, errs)
	}
	return out
}

func refSample(t *testing.T, file, title string, keepHash bool) string {
	t.Helper()
	all, err := reftext.Load(file, keepHash)
	if err != nil {
		t.Fatal(err)
	}
	s, err := reftext.Find(all, title)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return s.Body
}

// fixedClock returns a settable clock.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

// mustRunQuiet is run for goroutines other than the test's: it returns stdout only.
func mustRunQuiet(h *Host, name string, args ...string) string {
	out, _, _ := run(h, nil, name, args...)
	return out
}
