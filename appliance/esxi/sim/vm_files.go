package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/appliance/vmx"
)

// simVM is a registered VM's files as one command sees them.
type simVM struct {
	id      string
	hostVMX string // /vmfs/volumes/UUID/dir/name.vmx
	vmx     string // local path
	dir     string // local folder
	conf    *vmx.File
}

// vm loads a registered VM, or returns the NotFound fault vim-cmd prints for an unknown id.
func (s *session) vm(id string) (*simVM, error) {
	hostVMX, ok := s.inv.vmxOf(id)
	if !ok {
		return nil, &simFault{typ: "vim.fault.NotFound", msg: fmt.Sprintf(`Unable to find a VM corresponding to "%s"`, id)}
	}
	local, err := s.h.local(hostVMX)
	if err != nil {
		return nil, fmt.Errorf("VM %s: %w", id, err)
	}
	b, err := os.ReadFile(local)
	if err != nil {
		return nil, &simFault{typ: "vim.fault.NotFound", msg: fmt.Sprintf(`Unable to find a VM corresponding to "%s"`, hostVMX)}
	}
	conf, err := vmx.Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("VM %s: %w", id, err)
	}
	if _, ok := s.st.VMs[id]; !ok {
		s.st.VMs[id] = &vmState{Power: "off"}
	}
	return &simVM{id: id, hostVMX: hostVMX, vmx: local, dir: filepath.Dir(local), conf: conf}, nil
}

// stem is the .vmx file name without its extension: the prefix of the VM's other files.
func (v *simVM) stem() string { return strings.TrimSuffix(filepath.Base(v.vmx), ".vmx") }

// chainOf reads a disk's descriptor chain from its current descriptor (the top) down.
func (s *session) chainOf(v *simVM, d vmx.Disk) ([]layer, error) {
	top, err := s.h.resolveFile(v.dir, d.FileName)
	if err != nil {
		return nil, err
	}
	return s.h.chain(top)
}

// diskChain finds a VM's disk by device or vmdkN and reads its chain.
func (s *session) diskChain(vmid, disk string) (vmx.Disk, []layer, error) {
	v, err := s.vm(vmid)
	if err != nil {
		return vmx.Disk{}, nil, err
	}
	d, err := v.findDisk(disk)
	if err != nil {
		return vmx.Disk{}, nil, err
	}
	layers, err := s.chainOf(v, d)
	return d, layers, err
}

// findDisk picks a disk by device ("scsi0:0") or name ("vmdk1").
func (v *simVM) findDisk(which string) (vmx.Disk, error) {
	disks := v.conf.Disks()
	for i, d := range disks {
		if strings.EqualFold(d.Device, which) || vmx.DiskName(i) == which {
			return d, nil
		}
	}
	return vmx.Disk{}, fmt.Errorf("VM %s has no disk %q (give a device like scsi0:0 or vmdkN)", v.id, which)
}

// setVMXValue rewrites one key of a .vmx in place (see vmx.Edit).
func setVMXValue(path, key, value string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	return writeFileAtomic(path, []byte(vmx.Edit(string(b), map[string]string{key: value}, nil)))
}

// sameFile reports whether two paths name one file (paths through a datastore's name symlink and
// through its UUID folder differ as strings).
func sameFile(a, b string) bool {
	ia, err1 := os.Stat(a)
	ib, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ia, ib)
}
