package esxi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/appliance/internal/reftext"
)

// samples loads a reference file's samples or fails the test.
func samples(t testing.TB, name string, keepHash bool) []reftext.Sample {
	t.Helper()
	s, err := reftext.Load(name, keepHash)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sample returns the sample of a reference file whose title contains title.
func sample(t testing.TB, name, title string, keepHash bool) string {
	t.Helper()
	s, err := reftext.Find(samples(t, name, keepHash), title)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s.Body
}

// addSeeds seeds a fuzz test with every sample of the named reference files.
func addSeeds(f *testing.F, keepHash bool, names ...string) {
	for _, n := range names {
		for _, s := range samples(f, n, keepHash) {
			f.Add(s.Body)
		}
	}
}

// The copies in testdata must not drift from the shared contract they were taken from.
func TestReferenceCopiesMatchShared(t *testing.T) {
	shared := filepath.Join(reftext.Dir(), "..", "..", "..", "..", "..", "shared", "esxi-reference")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared reference not beside the repository (%v)", err)
	}
	copies, err := filepath.Glob(filepath.Join(reftext.Dir(), "*.txt"))
	if err != nil || len(copies) == 0 {
		t.Fatalf("no reference copies in %s (%v)", reftext.Dir(), err)
	}
	for _, c := range copies {
		want, err := os.ReadFile(filepath.Join(shared, filepath.Base(c)))
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(c), err)
			continue
		}
		got, _ := os.ReadFile(c)
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/reference/%s differs from shared/esxi-reference: copy it again", filepath.Base(c))
		}
	}
}
