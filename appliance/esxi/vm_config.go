package esxi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/vmdk"
)

// ReadConfig reads a VM's .vmx and each disk's descriptor chain from the datastores. Disks keep the
// .vmx order, which names them vmdk0, vmdk1...
func (d *Driver) ReadConfig(vm appliance.VM) (*appliance.VMConfig, error) {
	b, err := os.ReadFile(vm.LocalVMX)
	if err != nil {
		return nil, fmt.Errorf("read config of VM %s (%s): %w", vm.ID, vm.Name, err)
	}
	vmx, err := ParseVMX(string(b))
	if err != nil {
		return nil, fmt.Errorf("read config of VM %s (%s): %s: %w", vm.ID, vm.Name, vm.LocalVMX, err)
	}
	dir := filepath.Dir(vm.LocalVMX)
	cfg := &appliance.VMConfig{VM: vm, Dir: dir, Values: vmx.Values}
	stem := strings.TrimSuffix(filepath.Base(vm.LocalVMX), ".vmx")
	nvram := vmx.Value("nvram")
	if nvram == "" {
		nvram = stem + ".nvram"
	}
	for _, f := range []string{filepath.Base(vm.LocalVMX), nvram, stem + ".vmxf", stem + ".vmsd"} {
		p := d.resolve(dir, f)
		if _, err := os.Stat(p); err == nil {
			cfg.Files = append(cfg.Files, p)
		}
	}
	for i, vd := range vmx.Disks() {
		disk, err := d.readDisk(vm, dir, i, vd)
		if err != nil {
			return nil, fmt.Errorf("read config of VM %s (%s): disk %s: %w", vm.ID, vm.Name, vd.Device, err)
		}
		cfg.Disks = append(cfg.Disks, disk)
	}
	return cfg, nil
}

// resolve maps a .vmx fileName or a parentFileNameHint: absolute host paths under the VMFS root,
// anything else relative to dir.
func (d *Driver) resolve(dir, name string) string {
	if strings.HasPrefix(name, "/") {
		return d.LocalPath(name)
	}
	return filepath.Join(dir, filepath.FromSlash(name))
}

// maxChain bounds a descriptor chain; ESXi allows 32 snapshots per VM.
const maxChain = 64

func (d *Driver) readDisk(vm appliance.VM, dir string, i int, vd VMXDisk) (appliance.Disk, error) {
	disk := appliance.Disk{
		Name: DiskName(i), Device: vd.Device, FileName: vd.FileName, Mode: vd.Mode, Independent: vd.Independent(),
		Datastore: vm.Datastore,
	}
	if strings.HasPrefix(vd.FileName, hostVMFS) {
		disk.Datastore = strings.SplitN(strings.TrimPrefix(vd.FileName, hostVMFS), "/", 2)[0]
	}
	disk.Descriptor = d.resolve(dir, vd.FileName)
	cur := disk.Descriptor
	for {
		if len(disk.Chain) == maxChain {
			return disk, fmt.Errorf("descriptor chain longer than %d from %s (a loop?)", maxChain, disk.Descriptor)
		}
		b, err := os.ReadFile(cur)
		if err != nil {
			return disk, fmt.Errorf("read descriptor: %w", err)
		}
		desc, err := vmdk.Parse(b)
		if err != nil {
			return disk, fmt.Errorf("descriptor %s: %w", cur, err)
		}
		disk.Chain = append(disk.Chain, cur)
		if len(disk.Chain) == 1 {
			disk.Size = desc.Size()
		}
		if !IsDelta(desc) {
			disk.Base = cur
			disk.CreateType = desc.CreateType
			switch desc.CreateType {
			case "vmfsPassthroughRawDeviceMap":
				disk.RDM = appliance.PhysicalRDM
			case "vmfsRawDeviceMap":
				disk.RDM = appliance.VirtualRDM
			default:
				if len(desc.Extents) != 1 {
					return disk, fmt.Errorf("descriptor %s has %d extents; only single-extent disks are supported", cur, len(desc.Extents))
				}
				// Confined to the descriptor's folder: a descriptor naming ../../etc/shadow is
				// refused here, before any backup opens the file as root. An absolute
				// /vmfs/volumes/... name is a host path, mapped like the .vmx's.
				e := desc.Extents[0]
				if strings.HasPrefix(e.File, "/") {
					e.File = d.LocalPath(e.File)
				}
				if disk.Extent, err = vmdk.ExtentPath(cur, e); err != nil {
					return disk, err
				}
			}
			return disk, nil
		}
		cur = d.resolve(filepath.Dir(cur), desc.ParentFileNameHint)
	}
}

// sameLocalFile reports whether two paths name one file (a datastore's name and its UUID folder
// differ as strings).
func sameLocalFile(a, b string) bool {
	ia, err1 := os.Stat(a)
	ib, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ia, ib)
}
