package esxi

import (
	"testing"

	"github.com/snapferry/snapferry/images/vmdk"
)

func TestIsDeltaReference(t *testing.T) {
	for title, want := range map[string]bool{
		"base thin disk":            false,
		"vmfsSparse snapshot delta": true,
		"seSparse snapshot delta":   true,
	} {
		d, err := vmdk.Parse([]byte(sample(t, "vmdk-descriptors.txt", title, true)))
		if err != nil {
			t.Fatalf("%s: %v", title, err)
		}
		if got := IsDelta(d); got != want {
			t.Errorf("%s: IsDelta = %v, want %v", title, got, want)
		}
	}
}
