// Package reftext cuts the ESXi reference files (testdata/reference, copies of
// shared/esxi-reference) into their samples, so parser tests and simulator tests check against the
// very text of the contract rather than retyped copies.
//
// A reference file is a run of samples separated by title lines starting with "---- " (a title may
// continue on further "---- " lines). Lines starting with "#" are commentary, except in files whose
// samples themselves contain '#' lines (VMDK descriptors), where the caller keeps them.
package reftext

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Sample is one sample of a reference file.
type Sample struct {
	Title string // the title line(s) without the leading dashes; "" for text before the first title
	Body  string // the sample's lines, each ending in "\n"
}

// Dir returns the testdata/reference folder of appliance/esxi, wherever the caller's tests run.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "esxi", "testdata", "reference")
}

// Load reads a reference file by name ("getallvms.txt") and cuts it into samples.
func Load(name string, keepHash bool) ([]Sample, error) {
	b, err := os.ReadFile(filepath.Join(Dir(), name))
	if err != nil {
		return nil, fmt.Errorf("load reference %s: %w", name, err)
	}
	return Split(string(b), keepHash), nil
}

// Split cuts reference text into samples. Empty samples (no lines) are kept, so the caller can
// count on positions; sample bodies keep blank lines inside them.
func Split(text string, keepHash bool) []Sample {
	var out []Sample
	cur := Sample{}
	inTitle := false
	started := false
	flush := func() {
		if started {
			out = append(out, cur)
		}
	}
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		bare := strings.TrimSuffix(line, "\n")
		// "----Snapshot Name" is sample text (a tree level); titles have a blank after the dashes.
		if bare == "----" || strings.HasPrefix(bare, "---- ") {
			if inTitle {
				cur.Title += " " + strings.TrimSpace(strings.TrimLeft(bare, "-"))
				continue
			}
			flush()
			cur = Sample{Title: strings.TrimSpace(strings.TrimLeft(bare, "-"))}
			inTitle, started = true, true
			continue
		}
		inTitle = false
		if !keepHash && strings.HasPrefix(bare, "#") {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		cur.Body += line
		started = true
	}
	flush()
	return out
}

// Find returns the first sample whose title contains substr.
func Find(samples []Sample, substr string) (Sample, error) {
	for _, s := range samples {
		if strings.Contains(s.Title, substr) {
			return s, nil
		}
	}
	return Sample{}, fmt.Errorf("no reference sample titled like %q", substr)
}
