package main

import (
	"fmt"

	"github.com/snapferry/snapferry/images/vmdk"
)

// readDescriptorPair returns a VMDK descriptor's text and the path of its flat extent, with
// images/vmdk's refusals (RDMs, deltas, multi-extent disks) and their advice.
func readDescriptorPair(path string) (desc, flat string, err error) {
	d, text, err := vmdk.ReadDescriptor(path)
	if err != nil {
		return "", "", err
	}
	e, err := d.FlatExtent()
	if err != nil {
		return "", "", fmt.Errorf("descriptor %s: %w", path, err)
	}
	flat, err = vmdk.ExtentPath(path, e)
	if err != nil {
		return "", "", err
	}
	return string(text), flat, nil
}
