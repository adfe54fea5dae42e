package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/appliance/esxi"
)

// addVMFSFlag registers --vmfs-root (env SNAPFERRY_VMFS_ROOT) on commands that talk to the host.
func (a *app) addVMFSFlag(fs *pflag.FlagSet, dst *string) {
	fs.StringVar(dst, "vmfs-root", "", "datastore folder of this host (default /vmfs/volumes; env SNAPFERRY_VMFS_ROOT)")
}

// esxiHost opens the ESXi driver: vim-cmd, vmkfstools and esxcli from PATH, datastores under
// the VMFS root.
func esxiHost(vmfsRoot string) (*esxi.Driver, error) {
	cfg := esxi.ConfigFromEnv(os.Getenv)
	if vmfsRoot != "" {
		cfg.VMFSRoot = vmfsRoot
	}
	return esxi.New(cfg)
}

// vmLockDir is the folder of per-VM lock files: in the state folder, so every snapferry
// process on the host (user, cron, remote) sees the same locks.
func (a *app) vmLockDir() (string, error) {
	dir, err := a.stateDir()
	if err != nil {
		return "", err
	}
	d := filepath.Join(dir, "vmlocks")
	return d, os.MkdirAll(d, 0o700)
}
