package repo

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Snapshot kinds.
const (
	SnapshotFiles = "files" // directory trees / loose files
	SnapshotImage = "image" // raw or VMDK disk image files
	SnapshotVM    = "vm"    // a virtual machine: disks plus its config files in Tree
	// SnapshotHostState is a host's own snapferry state (jobs, schedules, history, known hosts;
	// appliance/hoststate), stored beside every backup run so a dead host can be rebuilt. It is
	// not a backup of a source: a filter with an empty Kind leaves it out (SnapshotFilter).
	SnapshotHostState = "host-state"
)

// Snapshot is the manifest of one backup. It names everything it needs (block-map chunks and
// trees), so a snapshot is restorable by itself and check/prune can walk what it references.
// Nothing is in the repository until its snapshot file is committed.
type Snapshot struct {
	Version  int       `json:"version"`
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Kind     string    `json:"kind"`
	Source   string    `json:"source"` // what was backed up: a VM name, an image path, a folder
	Paths    []string  `json:"paths,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	JobID    string    `json:"job_id,omitempty"`
	Parent   *ID       `json:"parent,omitempty"`
	Disks    []Disk    `json:"disks,omitempty"`
	Tree     *ID       `json:"tree,omitempty"` // files, or a VM's .vmx/.nvram/descriptors
	Partial  bool      `json:"partial,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
	Stats    Stats     `json:"stats"`
	// Size is the logical size of a files snapshot: the bytes of every regular file in its tree
	// (as a listing would add them up), recorded at backup. Images and VMs have it in their
	// disks; see LogicalSize. Nil in files snapshots made before it was recorded.
	Size *int64 `json:"size,omitempty"`
	// VM facts for SnapshotVM (name, id on the source host, datastore).
	VM *VMInfo `json:"vm,omitempty"`
}

// LogicalSize is what the snapshot holds, whatever its run read or stored: the apparent size of
// its disks (an image, a VM's disks) plus, for files, the bytes of its files. ok is false for a
// files snapshot made before the size was recorded.
func (s *Snapshot) LogicalSize() (size int64, ok bool) {
	for _, d := range s.Disks {
		size += d.Size
	}
	if s.Kind != SnapshotFiles {
		return size, true
	}
	if s.Size == nil {
		return size, false
	}
	return size + *s.Size, true
}

// Disk is one disk image in a snapshot.
type Disk struct {
	Name       string `json:"name"`             // "vmdk0", or the image file's base name
	Path       string `json:"path"`             // the source path of the data (flat extent or image)
	Device     string `json:"device,omitempty"` // "scsi0:0" for VM disks
	Format     string `json:"format"`           // "raw" or "vmdk" (descriptor + flat extent)
	Descriptor string `json:"descriptor,omitempty"`
	Size       int64  `json:"size"` // apparent size in bytes
	BlockSize  int    `json:"block_size"`
	Map        []ID   `json:"map"`       // block-map chunk blobs, in order
	Allocated  int64  `json:"allocated"` // bytes in non-hole blocks
	// The image file's permission bits (as chmod takes them, 07777), owner and times, which a
	// restore gives the file back. Snapshots made before they were recorded have Mode 0: such
	// images restore as 0600 with the time of the restore.
	Mode       uint32    `json:"mode,omitempty"`
	UID        uint32    `json:"uid,omitempty"`
	GID        uint32    `json:"gid,omitempty"`
	ModTime    time.Time `json:"mtime,omitzero"`
	AccessTime time.Time `json:"atime,omitzero"`
}

// VMInfo records where a VM snapshot came from.
type VMInfo struct {
	Name      string `json:"name"`
	ID        string `json:"id,omitempty"`
	Datastore string `json:"datastore,omitempty"`
	VMXPath   string `json:"vmx_path,omitempty"`
	Mode      string `json:"mode,omitempty"` // hot, warm, cold
	// Hypervisor is "libvirt" for libvirt domains (empty: ESXi). Checkpoint is the libvirt
	// checkpoint this backup created (or kept): the next incremental reads what changed since.
	Hypervisor string `json:"hypervisor,omitempty"`
	Checkpoint string `json:"checkpoint,omitempty"`
}

// Stats are the byte counts of one backup run.
type Stats struct {
	FilesNew       int   `json:"files_new,omitempty"`
	FilesChanged   int   `json:"files_changed,omitempty"`
	FilesUnchanged int   `json:"files_unchanged,omitempty"`
	BytesRead      int64 `json:"bytes_read"`   // bytes read from the source
	BytesAdded     int64 `json:"bytes_added"`  // plaintext bytes of new blobs
	BytesStored    int64 `json:"bytes_stored"` // compressed bytes written to packs
	BlobsNew       int   `json:"blobs_new"`
	BlobsReused    int   `json:"blobs_reused"`
	// BlocksCached counts disk blocks the block fingerprint cache recognised as unchanged: they
	// were not hashed with BLAKE3 nor offered to the repository (also counted in BlobsReused).
	BlocksCached int `json:"blocks_cached,omitempty"`
	// BlocksPatched counts changed disk blocks stored as patches of an earlier whole blob of the
	// same block (repo.PatchStore): also counted in BlobsNew, and in BytesAdded with the bytes
	// of the sub-blocks the patch keeps.
	BlocksPatched int `json:"blocks_patched,omitempty"`
}

// checkNames refuses disk names that restore could turn into a path outside its target: the
// CLI writes a disk to target/<name> (VMDK) or target/<base of path> (raw image). Backups only
// ever record plain file names ("vmdk0", "web01.vmdk", "disk.img"); anything else comes from a
// damaged or crafted manifest.
func (d *Disk) checkNames() error {
	unsafe := func(s string) bool { return s == "." || s == ".." || strings.ContainsAny(s, "/\x00") }
	if unsafe(d.Name) {
		return fmt.Errorf("disk name %q is not a plain file name (damaged or crafted snapshot): %w", d.Name, ErrCorrupt)
	}
	if d.Path != "" && unsafe(filepath.Base(d.Path)) {
		return fmt.Errorf("disk path %q does not end in a file name (damaged or crafted snapshot): %w", d.Path, ErrCorrupt)
	}
	return nil
}
