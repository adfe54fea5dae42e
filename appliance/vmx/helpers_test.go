package vmx

import (
	"testing"

	"github.com/snapferry/snapferry/appliance/internal/reftext"
)

// samples loads a reference file's samples (appliance/esxi/testdata/reference) or fails the test.
func samples(t testing.TB, name string, keepHash bool) []reftext.Sample {
	t.Helper()
	s, err := reftext.Load(name, keepHash)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
