//go:build !linux

package device

import "fmt"

func openDrive(path string, o Options) (Device, error) {
	return nil, fmt.Errorf("open tape drive %s: tape drives are only supported on Linux; use a regular file for a virtual tape", path)
}
