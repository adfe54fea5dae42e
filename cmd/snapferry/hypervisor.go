package main

import (
	"os"

	"github.com/snapferry/snapferry/appliance/libvirt"
)

// hypervisorFlags pick the host driver of VM commands (vms, backup --vm, restore of a VM).
type hypervisorFlags struct {
	kind string // --hypervisor: esxi, libvirt, or "" to detect
	uri  string // --libvirt-uri
}

// addHypervisorFlags registers --hypervisor and --libvirt-uri (env SNAPFERRY_LIBVIRT_URI).
func (a *app) addHypervisorFlags(f *hypervisorFlags) {
	a.flags.StringVar(&f.kind, "hypervisor", "", "host kind: esxi or libvirt (default: detected; vim-cmd on PATH is ESXi, a libvirt socket answering is libvirt)")
	a.flags.StringVar(&f.uri, "libvirt-uri", "", "libvirt connection (default qemu:///system; env SNAPFERRY_LIBVIRT_URI; qemu:///system?socket=PATH for another daemon)")
}

// libvirtHost opens the libvirt driver when this is a libvirt host, or returns nil for ESXi.
// Undetected (neither vim-cmd nor a libvirt socket) falls back to ESXi, whose driver then says
// what is missing, as before libvirt support.
func (a *app) libvirtHost(f hypervisorFlags) (*libvirt.Driver, error) {
	uri := f.uri
	if uri == "" {
		uri = os.Getenv("SNAPFERRY_LIBVIRT_URI")
	}
	kind, err := libvirt.Detect(a.ctx, f.kind, uri)
	if err != nil {
		if f.kind != "" {
			return nil, usagef("%v", err)
		}
		return nil, nil
	}
	if kind != libvirt.Libvirt {
		return nil, nil
	}
	return libvirt.Open(a.ctx, uri)
}
