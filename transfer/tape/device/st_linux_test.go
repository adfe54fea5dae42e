//go:build linux

package device

import (
	"runtime"
	"testing"
)

// The ioctl numbers must equal <sys/mtio.h>'s, or every tape operation is a different request.
func TestIoctlNumbers(t *testing.T) {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		if mtiocTop != 0x40086d01 || mtiocGet != 0x80306d02 {
			t.Fatalf("MTIOCTOP %#x MTIOCGET %#x, want 0x40086d01 0x80306d02", mtiocTop, mtiocGet)
		}
	case "386", "arm":
		if mtiocTop != 0x40086d01 || mtiocGet != 0x801c6d02 {
			t.Fatalf("MTIOCTOP %#x MTIOCGET %#x, want 0x40086d01 0x801c6d02", mtiocTop, mtiocGet)
		}
	}
}
