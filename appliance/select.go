package appliance

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// SelectVMs resolves --vm and --exclude-vm: include is "all", "running" or a comma list of names
// and ids; exclude is a comma list of names and ids. The result keeps inventory order. A name or
// id that matches no VM is an error naming it, so a typo never silently backs up nothing.
func SelectVMs(ctx context.Context, h Host, include, exclude string) ([]VM, error) {
	vms, err := h.VMs(ctx)
	if err != nil {
		return nil, err
	}
	excl, err := matchVMs(vms, exclude, "--exclude-vm")
	if err != nil {
		return nil, err
	}
	var picked map[string]bool
	switch strings.TrimSpace(include) {
	case "":
		return nil, fmt.Errorf("select VMs: empty --vm (give names, ids, all or running)")
	case "all":
		picked = map[string]bool{}
		for _, vm := range vms {
			picked[vm.ID] = true
		}
	case "running":
		picked = map[string]bool{}
		for _, vm := range vms {
			st, err := h.PowerState(ctx, vm.ID)
			if err != nil {
				return nil, fmt.Errorf("select running VMs: %w", err)
			}
			if st == PoweredOn {
				picked[vm.ID] = true
			}
		}
	default:
		if picked, err = matchVMs(vms, include, "--vm"); err != nil {
			return nil, err
		}
	}
	var out []VM
	for _, vm := range vms {
		if picked[vm.ID] && !excl[vm.ID] {
			out = append(out, vm)
		}
	}
	return out, nil
}

// matchVMs maps a comma list of names or ids to VM ids. A name shared by several VMs picks all
// of them: the inventory allows duplicates and the user named them all.
func matchVMs(vms []VM, list, flag string) (map[string]bool, error) {
	ids := map[string]bool{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		found := false
		for _, vm := range vms {
			if vm.ID == item || vm.Name == item {
				ids[vm.ID] = true
				found = true
			}
		}
		if !found {
			names := make([]string, 0, len(vms))
			for _, vm := range vms {
				names = append(names, fmt.Sprintf("%s (%s)", vm.Name, vm.ID))
			}
			return nil, fmt.Errorf("%s: no VM named or numbered %q on this host (VMs: %s)", flag, item, strings.Join(names, ", "))
		}
	}
	return ids, nil
}

// DiskExcluded reports whether an --exclude-disk entry names the disk: its name (vmdk1), its
// device (scsi0:2) or its descriptor's file name (name.vmdk).
func DiskExcluded(d Disk, excludes []string) bool {
	for _, e := range excludes {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if strings.EqualFold(e, d.Name) || strings.EqualFold(e, d.Device) || e == path.Base(d.FileName) {
			return true
		}
	}
	return false
}
