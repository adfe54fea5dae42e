package appliance

import (
	"context"
	"fmt"
)

// VMReport is one line of `snapferry vms`: a VM with its power state, datastores, disks and
// snapshots.
type VMReport struct {
	VM
	Power      PowerState     `json:"power"`
	Datastores []string       `json:"datastores,omitempty"` // the .vmx's first, then the disks' in order, no repeats
	Disks      []Disk         `json:"disks,omitempty"`
	Snapshots  []SnapshotInfo `json:"snapshots,omitempty"`
	Error      string         `json:"error,omitempty"` // why the details could not be read (the VM is still listed)
}

// Inventory reports every registered VM. A VM whose details cannot be read is listed with Error
// set, so one broken VM does not hide the others.
func Inventory(ctx context.Context, h Host) ([]VMReport, error) {
	vms, err := h.VMs(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	out := make([]VMReport, 0, len(vms))
	for _, vm := range vms {
		r := VMReport{VM: vm, Datastores: []string{vm.Datastore}}
		if err := fillReport(ctx, h, &r); err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	return out, nil
}

func fillReport(ctx context.Context, h Host, r *VMReport) error {
	var err error
	if r.Power, err = h.PowerState(ctx, r.ID); err != nil {
		return err
	}
	cfg, err := h.Config(ctx, r.ID)
	if err != nil {
		return err
	}
	r.Disks = cfg.Disks
	for _, d := range cfg.Disks {
		seen := false
		for _, ds := range r.Datastores {
			seen = seen || ds == d.Datastore
		}
		if !seen {
			r.Datastores = append(r.Datastores, d.Datastore)
		}
	}
	r.Snapshots, err = h.Snapshots(ctx, r.ID)
	return err
}
