package sim

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/vmx"
)

// VMSpec describes a VM for AddVM.
type VMSpec struct {
	Name       string // display name; spaces and brackets allowed
	ID         int    // inventory id; default the next free one
	VMXName    string // .vmx file name; default NAME.vmx
	Datastore  string // datastore of the .vmx
	Dir        string // folder on the datastore; default Name
	GuestOS    string // default otherLinux64Guest
	HWVersion  int    // virtual hardware version; default 19
	Annotation string // may span lines
	PoweredOn  bool
	Tools      bool // VMware Tools installed (it runs while the VM is on)
	Disks      []DiskSpec
}

// DiskSpec describes one disk of a VMSpec.
type DiskSpec struct {
	Device    string // default scsi0:N for the Nth disk
	Datastore string // default the VM's; another datastore makes the .vmx use an absolute path
	FileName  string // default "NAME.vmdk", "NAME_1.vmdk"...
	Size      int64  // bytes, a multiple of 512
	Mode      string // "", "independent-persistent", "independent-nonpersistent"
	RDM       appliance.RDMKind
	Data      []Extent // written at creation with Pattern; the rest stays holes (thin disk)
}

// Extent is a range of a disk filled with Pattern(Seed).
type Extent struct {
	Offset, Length int64
	Seed           uint64
}

// AddVM creates a VM's files (.vmx, .nvram, .vmxf, empty .vmsd, descriptors and sparse flat
// extents), registers it and returns its id.
func (h *Host) AddVM(spec VMSpec) (string, error) {
	if spec.Name == "" || spec.Datastore == "" {
		return "", fmt.Errorf("add VM: Name and Datastore are required")
	}
	if spec.Dir == "" {
		spec.Dir = spec.Name
	}
	if spec.GuestOS == "" {
		spec.GuestOS = "otherLinux64Guest"
	}
	if spec.HWVersion == 0 {
		spec.HWVersion = 19
	}
	var id string
	err := h.do(func(s *session) error {
		ds, err := s.datastoreNamed(spec.Datastore)
		if err != nil {
			return fmt.Errorf("add VM %q: %w", spec.Name, err)
		}
		dir := filepath.Join(h.Root, ds.Name, filepath.FromSlash(spec.Dir))
		if exists(dir) {
			return fmt.Errorf("add VM %q: folder %s exists", spec.Name, dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("add VM %q: %w", spec.Name, err)
		}
		vmx, err := h.writeVMFiles(s, spec, dir)
		if err != nil {
			return fmt.Errorf("add VM %q: %w", spec.Name, err)
		}
		hostVMX := VMFSPrefix + ds.UUID + "/" + spec.Dir + "/" + filepath.Base(vmx)
		if spec.ID > 0 {
			if _, taken := s.inv.vmxOf(strconv.Itoa(spec.ID)); taken {
				return fmt.Errorf("add VM %q: id %d is taken", spec.Name, spec.ID)
			}
			s.st.NextVMID = spec.ID
		}
		id, err = s.register(hostVMX)
		if err != nil {
			return fmt.Errorf("add VM %q: %w", spec.Name, err)
		}
		if spec.PoweredOn {
			s.st.VMs[id].Power = "on"
		}
		s.st.VMs[id].ToolsInstalled = spec.Tools
		return nil
	})
	return id, err
}

// register adds a .vmx (host path) to the inventory with the next id.
func (s *session) register(hostVMX string) (string, error) {
	for _, e := range s.inv.Entries {
		if e.VMXCfgPath == hostVMX {
			return "", fmt.Errorf("register %s: already registered as %s", hostVMX, e.ObjID)
		}
	}
	id := strconv.Itoa(s.st.NextVMID)
	for _, taken := s.inv.vmxOf(id); taken; _, taken = s.inv.vmxOf(id) {
		s.st.NextVMID++
		id = strconv.Itoa(s.st.NextVMID)
	}
	s.st.NextVMID++
	s.inv.Entries = append(s.inv.Entries, inventoryEntry{ObjID: id, SecDomain: "1", VMXCfgPath: hostVMX})
	s.st.VMs[id] = &vmState{Power: "off"}
	return id, s.event("register", "vm", id, "vmx", hostVMX)
}

func (h *Host) writeVMFiles(s *session, spec VMSpec, dir string) (string, error) {
	stem := strings.TrimSuffix(spec.VMXName, ".vmx")
	if stem == "" {
		stem = spec.Name
	}
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, vmx.EncodeValue(v)) }
	kv(".encoding", "UTF-8")
	kv("config.version", "8")
	kv("virtualHW.version", strconv.Itoa(spec.HWVersion))
	kv("displayName", spec.Name)
	kv("guestOS", spec.GuestOS)
	if spec.Annotation != "" {
		kv("annotation", spec.Annotation)
	}
	kv("nvram", stem+".nvram")
	kv("memSize", "1024")
	kv("numvcpus", "1")
	controllers := map[string]bool{}
	for i, d := range spec.Disks {
		dev := d.Device
		if dev == "" {
			dev = "scsi0:" + strconv.Itoa(i)
		}
		ctrl, _, _ := strings.Cut(dev, ":")
		if !controllers[ctrl] {
			controllers[ctrl] = true
			kv(ctrl+".present", "TRUE")
			if strings.HasPrefix(ctrl, "scsi") {
				kv(ctrl+".virtualDev", "pvscsi")
			}
		}
		fileName, err := h.writeDisk(s, spec, i, d, dir)
		if err != nil {
			return "", err
		}
		kv(dev+".present", "TRUE")
		if !strings.HasPrefix(ctrl, "ide") {
			kv(dev+".deviceType", "scsi-hardDisk")
		}
		kv(dev+".fileName", fileName)
		if d.Mode != "" {
			kv(dev+".mode", d.Mode)
		}
	}
	kv("ethernet0.present", "TRUE")
	kv("ethernet0.virtualDev", "vmxnet3")
	kv("ethernet0.networkName", "VM Network")
	kv("uuid.bios", diskUUID())
	vmx := filepath.Join(dir, stem+".vmx")
	files := map[string]string{
		vmx:                               b.String(),
		filepath.Join(dir, stem+".vmsd"):  "",
		filepath.Join(dir, stem+".vmxf"):  "<?xml version=\"1.0\"?>\n<Foundry>\n<VM>\n<VMId type=\"string\">" + randomHex(16) + "</VMId>\n</VM>\n</Foundry>\n",
		filepath.Join(dir, stem+".nvram"): "NVRAM" + randomHex(64),
	}
	for p, text := range files {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return "", err
		}
	}
	return vmx, nil
}

// writeDisk writes one disk's descriptor and extent and returns the .vmx fileName for it.
func (h *Host) writeDisk(s *session, spec VMSpec, i int, d DiskSpec, vmDir string) (string, error) {
	if d.Size <= 0 || d.Size%512 != 0 {
		return "", fmt.Errorf("disk %d: size %d is not a positive multiple of 512", i, d.Size)
	}
	name := d.FileName
	if name == "" {
		name = spec.Name + ".vmdk"
		if i > 0 {
			name = spec.Name + "_" + strconv.Itoa(i) + ".vmdk"
		}
	}
	dir, fileName := vmDir, name
	if d.Datastore != "" && d.Datastore != spec.Datastore {
		ds, err := s.datastoreNamed(d.Datastore)
		if err != nil {
			return "", fmt.Errorf("disk %d: %w", i, err)
		}
		dir = filepath.Join(h.Root, ds.Name, filepath.FromSlash(spec.Dir))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		fileName = VMFSPrefix + path.Join(ds.Name, spec.Dir, name)
	}
	stem := strings.TrimSuffix(name, ".vmdk")
	cid := randomHex(4)
	sectors := d.Size / 512
	var desc, extent string
	switch d.RDM {
	case appliance.PhysicalRDM, appliance.VirtualRDM:
		suffix := "-rdm.vmdk"
		if d.RDM == appliance.PhysicalRDM {
			suffix = "-rdmp.vmdk"
		}
		extent = stem + suffix
		desc = rdmDescriptor(d.RDM == appliance.PhysicalRDM, cid, sectors, extent)
		// The mapping file stands in for the LUN; it is not read through the simulator.
		if err := os.WriteFile(filepath.Join(dir, extent), []byte("RDM mapping to naa.600"+randomHex(14)+"\n"), 0o644); err != nil {
			return "", err
		}
	default:
		extent = stem + "-flat.vmdk"
		desc = baseDescriptor(cid, sectors, extent, randomHex(12)+cid, diskUUID())
		f, err := os.OpenFile(filepath.Join(dir, extent), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if err := f.Truncate(d.Size); err != nil {
			return "", err
		}
		for _, e := range d.Data {
			if e.Offset < 0 || e.Length < 0 || e.Offset+e.Length > d.Size {
				return "", fmt.Errorf("disk %d: data extent %+v outside the disk", i, e)
			}
			buf := make([]byte, e.Length)
			Pattern(e.Seed, e.Offset, buf)
			if _, err := f.WriteAt(buf, e.Offset); err != nil {
				return "", err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(desc), 0o644); err != nil {
		return "", err
	}
	return fileName, nil
}
