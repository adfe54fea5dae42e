package main

import (
	"fmt"
	"strings"

	"github.com/snapferry/snapferry/appliance"
)

// runVms is `snapferry vms`: the inventory of this host with disks and snapshots.
func runVms(a *app, args []string) int {
	var vmfs string
	a.addVMFSFlag(&vmfs)
	var hv hypervisorFlags
	a.addHypervisorFlags(&hv)
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("vms takes no arguments, got %q", pos))
	}
	var h appliance.Host
	lv, err := a.libvirtHost(hv)
	switch {
	case err != nil:
		return a.fail(err)
	case lv != nil:
		defer lv.Close()
		h = lv
	default:
		if h, err = esxiHost(vmfs); err != nil {
			return a.fail(err)
		}
	}
	inv, err := appliance.Inventory(a.ctx, h)
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(inv)
		return exitOK
	}
	for _, vm := range inv {
		fmt.Fprintf(a.stdout, "%s  %s  [%s]  %s\n", vm.ID, vm.Name, vm.Power, strings.Join(vm.Datastores, ", "))
		if vm.Error != "" {
			fmt.Fprintf(a.stdout, "    error: %s\n", vm.Error)
			continue
		}
		for _, d := range vm.Disks {
			note := ""
			switch {
			case d.RDM != "":
				note = " (raw device mapping: " + string(d.RDM) + ")"
			case d.Independent:
				note = " (independent: " + d.Mode + ")"
			}
			fmt.Fprintf(a.stdout, "    %s %-9s %10s  %s%s\n", d.Name, d.Device, humanBytes(d.Size), d.FileName, note)
		}
		for _, s := range vm.Snapshots {
			fmt.Fprintf(a.stdout, "    snapshot %s %q %s\n", s.ID, s.Name, s.Created.Format("2006-01-02 15:04:05"))
		}
	}
	fmt.Fprintf(a.stdout, "%d VMs\n", len(inv))
	return exitOK
}
