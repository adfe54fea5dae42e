package appliance

import (
	"context"
	"time"
)

// PowerState is a VM's power state as the host reports it.
type PowerState string

// The power states vim-cmd reports ("Powered on", "Powered off", "Suspended").
const (
	PoweredOn  PowerState = "on"
	PoweredOff PowerState = "off"
	Suspended  PowerState = "suspended"
)

// VM is one registered virtual machine as the inventory lists it.
type VM struct {
	ID         string `json:"id"`                  // the host's id (vim-cmd Vmid)
	Name       string `json:"name"`                // display name; may contain spaces and brackets
	Datastore  string `json:"datastore"`           // datastore holding the .vmx
	VMXPath    string `json:"vmx_path"`            // datastore path of the .vmx: "[datastore1] web 01/web 01.vmx"
	LocalVMX   string `json:"local_vmx,omitempty"` // file system path of the .vmx on this host (under the VMFS root)
	GuestOS    string `json:"guest_os,omitempty"`
	Version    string `json:"version,omitempty"`    // virtual hardware version, "vmx-19"
	Annotation string `json:"annotation,omitempty"` // may span several lines
}

// RDMKind says whether a disk is a raw device mapping and of which compatibility.
type RDMKind string

// Raw device mapping kinds, from the descriptor's createType.
const (
	NotRDM      RDMKind = ""
	VirtualRDM  RDMKind = "virtual"  // createType vmfsRawDeviceMap
	PhysicalRDM RDMKind = "physical" // createType vmfsPassthroughRawDeviceMap: never in snapshots
)

// Disk is one virtual disk of a VM, in .vmx order.
type Disk struct {
	Name        string   `json:"name"`             // "vmdk0", "vmdk1"... in the order the .vmx lists the disks
	Device      string   `json:"device"`           // "scsi0:0", "sata0:1", "nvme0:0", "ide0:0"
	FileName    string   `json:"file_name"`        // the .vmx fileName value as written (relative or absolute)
	Descriptor  string   `json:"descriptor"`       // local path of the descriptor the VM runs on now (a delta while snapshotted)
	Chain       []string `json:"chain,omitempty"`  // local paths of the descriptors from Descriptor down to the base disk
	Base        string   `json:"base"`             // local path of the base descriptor (the last element of Chain)
	Extent      string   `json:"extent,omitempty"` // local path of the base disk's flat extent (empty for RDMs)
	Datastore   string   `json:"datastore"`        // datastore of the base descriptor
	Size        int64    `json:"size"`             // bytes: sectors of the extent lines x 512
	Mode        string   `json:"mode,omitempty"`   // the .vmx mode value, "" for the default (dependent)
	Independent bool     `json:"independent"`      // mode independent-*: left out of snapshots
	RDM         RDMKind  `json:"rdm"`
	CreateType  string   `json:"create_type"` // createType of the base descriptor
}

// VMConfig is a VM with what its .vmx and descriptors say.
type VMConfig struct {
	VM
	Dir    string            // local folder of the .vmx
	Files  []string          // local paths of the VM's own config files: .vmx, .nvram, .vmxf, .vmsd (those that exist)
	Disks  []Disk            // present disks in .vmx order
	Values map[string]string // every .vmx key (lower case) and its decoded value
}

// SnapshotInfo is one VM snapshot.
type SnapshotInfo struct {
	ID          string    `json:"id"` // the host's snapshot id (vim-cmd Snapshot Id)
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`          // host local time, as printed
	State       string    `json:"state"`            // "powered on", "powered off", "suspended"
	Parent      string    `json:"parent,omitempty"` // id of the parent snapshot, "" for a root
	Level       int       `json:"level"`            // depth in the tree, 0 for a root
	Index       int       `json:"index"`            // position among the snapshots of the same level, in tree order
}

// SnapshotOptions are the optional flags of a VM snapshot.
type SnapshotOptions struct {
	Memory  bool // include the memory state
	Quiesce bool // quiesce the guest file systems through VMware Tools
}

// Datastore is one mounted volume.
type Datastore struct {
	Name      string // volume name; may be empty or contain spaces
	UUID      string
	MountPath string // as the host prints it: /vmfs/volumes/UUID
	LocalPath string // file system path on this host (under the VMFS root)
	Type      string // VMFS-6, VMFS-5, NFS, NFS41, vfat, VMFSOS
	Mounted   bool
	Size      int64
	Free      int64
}

// Host is a hypervisor host: everything the VM jobs do to it goes through here. Methods that start
// host tasks (snapshots, power) return when the task has ended or failed, except Shutdown, which
// only asks the guest to shut down (callers poll PowerState). Errors wrap the classes in errors.go
// where the host reported a known fault.
type Host interface {
	// VMs lists the registered VMs.
	VMs(ctx context.Context) ([]VM, error)
	// Config reads a VM's .vmx and disk descriptors.
	Config(ctx context.Context, id string) (*VMConfig, error)
	PowerState(ctx context.Context, id string) (PowerState, error)
	PowerOn(ctx context.Context, id string) error
	// PowerOff is the hard power-off.
	PowerOff(ctx context.Context, id string) error
	// Shutdown asks VMware Tools for a guest shutdown; ErrToolsNotRunning when it cannot.
	Shutdown(ctx context.Context, id string) error
	// Snapshots lists a VM's snapshot tree in tree order (parents before children).
	Snapshots(ctx context.Context, id string) ([]SnapshotInfo, error)
	// CreateSnapshot takes a snapshot and returns it once the host shows it.
	CreateSnapshot(ctx context.Context, id, name, description string, opts SnapshotOptions) (SnapshotInfo, error)
	// RemoveSnapshot removes one snapshot (not its children), consolidating its delta disks.
	RemoveSnapshot(ctx context.Context, id string, snap SnapshotInfo) error
	// Register adds a .vmx (a local path) to the inventory and returns the new VM id.
	Register(ctx context.Context, vmx, name string) (string, error)
	Unregister(ctx context.Context, id string) error
	// CloneDisk copies the disk a descriptor describes, chain included, to a new thin disk.
	CloneDisk(ctx context.Context, src, dst string) error
	Datastores(ctx context.Context) ([]Datastore, error)
}
