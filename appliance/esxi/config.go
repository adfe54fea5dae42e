package esxi

import (
	"path/filepath"
	"strings"
	"time"
)

// DefaultVMFSRoot is where a host mounts its datastores.
const DefaultVMFSRoot = "/vmfs/volumes"

// hostVMFS is the prefix of host paths in .vmx files, descriptors and command arguments.
const hostVMFS = "/vmfs/volumes/"

// Config says where the driver finds the host's tools and datastores.
type Config struct {
	// VimCmd, Vmkfstools, Esxcli, Vmware are command names looked up on PATH, or paths. Empty
	// means the plain name ("vim-cmd"...).
	VimCmd, Vmkfstools, Esxcli, Vmware string
	// VMFSRoot is the folder holding the datastores: /vmfs/volumes on a host (the default), a
	// simulator's folder in tests. Host paths (/vmfs/volumes/DS/...) map under it.
	VMFSRoot string
	// Env is the environment of the commands; nil inherits this process's.
	Env []string
	// PollInterval is how often task completion is polled (default 500ms); TaskTimeout how long a
	// snapshot task may take before the driver gives up (default 30 minutes).
	PollInterval, TaskTimeout time.Duration
}

// ConfigFromEnv is the default configuration with the VMFS root from SNAPFERRY_VMFS_ROOT.
func ConfigFromEnv(getenv func(string) string) Config {
	return Config{VMFSRoot: getenv("SNAPFERRY_VMFS_ROOT")}
}

func (c *Config) defaults() {
	if c.VimCmd == "" {
		c.VimCmd = "vim-cmd"
	}
	if c.Vmkfstools == "" {
		c.Vmkfstools = "vmkfstools"
	}
	if c.Esxcli == "" {
		c.Esxcli = "esxcli"
	}
	if c.Vmware == "" {
		c.Vmware = "vmware"
	}
	if c.VMFSRoot == "" {
		c.VMFSRoot = DefaultVMFSRoot
	}
	c.VMFSRoot = filepath.Clean(c.VMFSRoot)
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = 30 * time.Minute
	}
}

// LocalPath maps a host path (/vmfs/volumes/DS/...) to this machine's file under the VMFS root.
// Paths elsewhere are returned unchanged.
func (d *Driver) LocalPath(hostPath string) string {
	if !strings.HasPrefix(hostPath, hostVMFS) {
		return hostPath
	}
	return filepath.Join(d.cfg.VMFSRoot, filepath.FromSlash(strings.TrimPrefix(hostPath, hostVMFS)))
}

// HostPath maps a local file under the VMFS root to the host path the host's tools take.
func (d *Driver) HostPath(local string) string {
	rel, err := filepath.Rel(d.cfg.VMFSRoot, local)
	if err != nil || strings.HasPrefix(rel, "..") {
		return local
	}
	return hostVMFS + filepath.ToSlash(rel)
}

// DatastoreFile maps "[datastore] dir/file" to the local file.
func (d *Driver) DatastoreFile(dsPath string) (string, error) {
	ds, rel, err := ParseDatastorePath(dsPath)
	if err != nil {
		return "", err
	}
	return filepath.Join(d.cfg.VMFSRoot, ds, filepath.FromSlash(rel)), nil
}

// VMFSRoot is the folder the datastores are under.
func (d *Driver) VMFSRoot() string { return d.cfg.VMFSRoot }
