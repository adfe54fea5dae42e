package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/appliance"
)

func newVmsCmd(a *app) *cobra.Command {
	var vmfs string
	var hv hypervisorFlags
	c := &cobra.Command{
		Use:   "vms [options]",
		Short: "list the VMs of this host",
		Long: "Vms lists the VMs of this host (ESXi or libvirt) with their power state, datastores, disks and snapshots, as\n" +
			"backup --vm sees them.",
		Example: "  snapferry vms\n  snapferry vms --host=root@esxi01 --json",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.vms(vmfs, hv) },
	}
	a.addVMFSFlag(c.Flags(), &vmfs)
	a.addHypervisorFlags(c.Flags(), &hv)
	a.addSSHFlags(c.Flags())
	a.addHostFlag(c)
	return c
}

// vms prints the inventory of this host with disks and snapshots.
func (a *app) vms(vmfs string, hv hypervisorFlags) error {
	var h appliance.Host
	lv, err := a.libvirtHost(hv)
	switch {
	case err != nil:
		return err
	case lv != nil:
		defer lv.Close()
		h = lv
	default:
		if h, err = esxiHost(vmfs); err != nil {
			return err
		}
	}
	inv, err := appliance.Inventory(a.ctx, h)
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.printJSON(orEmpty(inv))
		return nil
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
	fmt.Fprintln(a.stdout, plural(len(inv), "VM"))
	return nil
}
