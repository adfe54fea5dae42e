package libvirt

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/snapferry/snapferry/appliance"
)

// Driver is a connection to a local libvirt daemon. It implements appliance.Host for what a
// libvirt host has (inventory, configuration, power); VM snapshots, .vmx registration and
// datastores are ESXi's and return ErrUnsupported: libvirt backups use checkpoints (backup.go).
type Driver struct {
	l   *golibvirt.Libvirt
	uri string
}

var _ appliance.Host = (*Driver)(nil)

// ErrUnsupported is returned by Host methods that have no libvirt counterpart.
var ErrUnsupported = errors.New("not supported on a libvirt host")

// Close ends the connection.
func (d *Driver) Close() error { return d.l.Disconnect() }

// domain finds a domain by UUID (its appliance.VM ID) or by name.
func (d *Driver) domain(id string) (golibvirt.Domain, error) {
	if u, ok := parseUUID(id); ok {
		if dom, err := d.l.DomainLookupByUUID(u); err == nil {
			return dom, nil
		}
	}
	dom, err := d.l.DomainLookupByName(id)
	if err != nil {
		if isCode(err, golibvirt.ErrNoDomain) {
			return dom, fmt.Errorf("domain %q: %w", id, appliance.ErrNotFound)
		}
		return dom, fmt.Errorf("domain %q: %w", id, err)
	}
	return dom, nil
}

func isCode(err error, code golibvirt.ErrorNumber) bool {
	var le golibvirt.Error
	return errors.As(err, &le) && le.Code == uint32(code)
}

func vmOf(dom golibvirt.Domain) appliance.VM {
	return appliance.VM{ID: formatUUID(dom.UUID), Name: dom.Name}
}

// VMs lists every defined domain, running or not.
func (d *Driver) VMs(ctx context.Context) ([]appliance.VM, error) {
	doms, _, err := d.l.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("list libvirt domains: %w", err)
	}
	out := make([]appliance.VM, 0, len(doms))
	for _, dom := range doms {
		vm := vmOf(dom)
		if xml, err := d.l.DomainGetXMLDesc(dom, 0); err == nil {
			if _, disks, _, err := domainDisks(xml); err == nil && len(disks) > 0 {
				vm.Datastore = filepath.Dir(disks[0].Path)
			}
		}
		out = append(out, vm)
	}
	return out, nil
}

// DomainXML is a domain's current definition (the running one when it runs).
func (d *Driver) DomainXML(ctx context.Context, id string) (string, error) {
	dom, err := d.domain(id)
	if err != nil {
		return "", err
	}
	return d.l.DomainGetXMLDesc(dom, 0)
}

// Config reads a domain's disks from its XML; sizes come from libvirt's block info.
func (d *Driver) Config(ctx context.Context, id string) (*appliance.VMConfig, error) {
	dom, err := d.domain(id)
	if err != nil {
		return nil, err
	}
	xml, err := d.l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return nil, fmt.Errorf("domain %s: read XML: %w", dom.Name, err)
	}
	_, disks, _, err := domainDisks(xml)
	if err != nil {
		return nil, fmt.Errorf("domain %s: %w", dom.Name, err)
	}
	cfg := &appliance.VMConfig{VM: vmOf(dom)}
	for _, s := range disks {
		_, capacity, _, err := d.l.DomainGetBlockInfo(dom, s.Target, 0)
		if err != nil {
			return nil, fmt.Errorf("domain %s: size of disk %s: %w", dom.Name, s.Target, err)
		}
		cfg.Disks = append(cfg.Disks, appliance.Disk{
			Name: s.Target, Device: s.Bus + ":" + s.Target, FileName: s.Path, Descriptor: s.Path,
			Chain: []string{s.Path}, Base: s.Path, Datastore: filepath.Dir(s.Path),
			Size: int64(capacity), CreateType: s.Format,
		})
	}
	if len(disks) > 0 {
		cfg.Datastore = filepath.Dir(disks[0].Path)
		cfg.Dir = cfg.Datastore
	}
	return cfg, nil
}

// PowerState maps libvirt's domain states: running and blocked are on, paused and
// pm-suspended are suspended, everything else off.
func (d *Driver) PowerState(ctx context.Context, id string) (appliance.PowerState, error) {
	dom, err := d.domain(id)
	if err != nil {
		return "", err
	}
	st, _, err := d.l.DomainGetState(dom, 0)
	if err != nil {
		return "", fmt.Errorf("domain %s: state: %w", dom.Name, err)
	}
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked:
		return appliance.PoweredOn, nil
	case golibvirt.DomainPaused, golibvirt.DomainPmsuspended:
		return appliance.Suspended, nil
	}
	return appliance.PoweredOff, nil
}

// PowerOn starts a defined domain.
func (d *Driver) PowerOn(ctx context.Context, id string) error {
	dom, err := d.domain(id)
	if err != nil {
		return err
	}
	if err := d.l.DomainCreate(dom); err != nil {
		return fmt.Errorf("start domain %s: %w", dom.Name, err)
	}
	return nil
}

// PowerOff destroys (hard-stops) a running domain.
func (d *Driver) PowerOff(ctx context.Context, id string) error {
	dom, err := d.domain(id)
	if err != nil {
		return err
	}
	if err := d.l.DomainDestroy(dom); err != nil {
		return fmt.Errorf("stop domain %s: %w", dom.Name, err)
	}
	return nil
}

// Shutdown asks the guest to shut down (ACPI or agent, as libvirt chooses).
func (d *Driver) Shutdown(ctx context.Context, id string) error {
	dom, err := d.domain(id)
	if err != nil {
		return err
	}
	if err := d.l.DomainShutdown(dom); err != nil {
		return fmt.Errorf("shut down domain %s: %w", dom.Name, err)
	}
	return nil
}

// Snapshots lists no VM snapshots: snapferry uses checkpoints on libvirt, and libvirt's own
// snapshots are not part of a backup.
func (d *Driver) Snapshots(ctx context.Context, id string) ([]appliance.SnapshotInfo, error) {
	return nil, nil
}

// CreateSnapshot is ESXi's; libvirt backups use backup jobs with checkpoints.
func (d *Driver) CreateSnapshot(ctx context.Context, id, name, description string, opts appliance.SnapshotOptions) (appliance.SnapshotInfo, error) {
	return appliance.SnapshotInfo{}, fmt.Errorf("VM snapshots: %w (backups use checkpoints)", ErrUnsupported)
}

// RemoveSnapshot: see CreateSnapshot.
func (d *Driver) RemoveSnapshot(ctx context.Context, id string, snap appliance.SnapshotInfo) error {
	return fmt.Errorf("VM snapshots: %w", ErrUnsupported)
}

// Register is ESXi's .vmx registration; a libvirt restore defines the domain from its XML.
func (d *Driver) Register(ctx context.Context, vmx, name string) (string, error) {
	return "", fmt.Errorf("register a .vmx: %w", ErrUnsupported)
}

// Unregister undefines a domain (its disks stay), keeping nothing of its checkpoint metadata.
func (d *Driver) Unregister(ctx context.Context, id string) error {
	dom, err := d.domain(id)
	if err != nil {
		return err
	}
	flags := golibvirt.DomainUndefineCheckpointsMetadata | golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata | golibvirt.DomainUndefineNvram
	if err := d.l.DomainUndefineFlags(dom, flags); err != nil {
		return fmt.Errorf("undefine domain %s: %w", dom.Name, err)
	}
	return nil
}

// CloneDisk is ESXi's vmkfstools clone.
func (d *Driver) CloneDisk(ctx context.Context, src, dst string) error {
	return fmt.Errorf("clone disk: %w", ErrUnsupported)
}

// Datastores lists none: libvirt disks are files in folders (or pools snapferry does not use).
func (d *Driver) Datastores(ctx context.Context) ([]appliance.Datastore, error) {
	return nil, nil
}

// formatUUID prints a UUID as libvirt does: 8-4-4-4-12 lower-case hex.
func formatUUID(u golibvirt.UUID) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// parseUUID reads a UUID with or without dashes.
func parseUUID(s string) (golibvirt.UUID, bool) {
	var u golibvirt.UUID
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != len(u) {
		return u, false
	}
	copy(u[:], b)
	return u, true
}
