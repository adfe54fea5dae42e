package esxi

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fullProgress expands the reference's " ... " elision into every percentage.
func fullProgress(t *testing.T) string {
	body := sample(t, "vmkfstools.txt", "", false)
	var b strings.Builder
	for i := 3; i < 100; i++ {
		b.WriteString("\rClone: " + strconv.Itoa(i) + "% done.")
	}
	// The reference writes the carriage returns as "^M".
	return strings.ReplaceAll(strings.Replace(body, " ... ", b.String(), 1), "^M", "\r")
}

func TestParseCloneOutputReference(t *testing.T) {
	r := ParseCloneOutput(fullProgress(t))
	if r.LastPercent != 100 || r.Failure != "" {
		t.Errorf("success sample: %+v", r)
	}
	if len(r.Notes) != 2 || r.Notes[0] != "Destination disk format: VMFS thin-provisioned" {
		t.Errorf("notes = %q", r.Notes)
	}
	fail := sample(t, "vmkfstools.txt", "failures", false)
	lines := strings.SplitAfter(fail, "\n")
	r = ParseCloneOutput("Destination disk format: VMFS thin-provisioned\r\nClone: 41% done.\r" + lines[0])
	if r.Failure != "Failed to clone disk : No space left on device" || r.Code != NoSpaceCode || r.LastPercent != 41 {
		t.Errorf("no space: %+v", r)
	}
	r = ParseCloneOutput(lines[1])
	if r.Failure != "Failed to lock the file" || r.Code != 16392 {
		t.Errorf("lock failure: %+v", r)
	}
	r = ParseCloneOutput(sample(t, "vmkfstools.txt", "with -a ADAPTER", false))
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "deprecated") || r.LastPercent != -1 {
		t.Errorf("deprecation note: %+v", r)
	}
}

func TestProgressWriterAcrossSplits(t *testing.T) {
	out := fullProgress(t)
	var seen []int
	w := NewProgressWriter(func(p int) { seen = append(seen, p) })
	for i := 0; i < len(out); i += 7 { // split writes mid-number
		end := min(i+7, len(out))
		if _, err := w.Write([]byte(out[i:end])); err != nil {
			t.Fatal(err)
		}
	}
	var want []int
	for i := 0; i <= 100; i++ {
		want = append(want, i)
	}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("progress seen %v", seen)
	}
	if w.String() != out {
		t.Error("ProgressWriter did not keep the whole output")
	}
}

func FuzzParseCloneOutput(f *testing.F) {
	addSeeds(f, false, "vmkfstools.txt")
	f.Fuzz(func(t *testing.T, out string) {
		r := ParseCloneOutput(out)
		if r.LastPercent < -1 || r.LastPercent > 999 {
			t.Fatalf("percent %d from %q", r.LastPercent, out)
		}
		w := NewProgressWriter(nil)
		_, _ = w.Write([]byte(out))
	})
}
