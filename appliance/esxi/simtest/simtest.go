// Package simtest sets up the ESXi simulator for tests of packages that drive a host: it builds
// cmd/esxisim, links it under the tool names, and returns a driver configured for a simulated
// host. Tests that use it run real processes, as the driver does on a host.
package simtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/esxi"
)

// Tools are the names the simulator answers to.
var Tools = []string{"vim-cmd", "vmkfstools", "esxcli", "vmware"}

// Build compiles cmd/esxisim into dir and links the tool names to it. Call it once per test
// binary (from TestMain): a build takes seconds.
func Build(dir string) error {
	_, file, _, _ := runtime.Caller(0)
	pkg := filepath.Join(filepath.Dir(file), "..", "..", "..", "cmd", "esxisim")
	bin := filepath.Join(dir, "esxisim")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = pkg
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build esxisim: %w\n%s", err, out)
	}
	for _, t := range Tools {
		if err := os.Symlink("esxisim", filepath.Join(dir, t)); err != nil {
			return fmt.Errorf("link %s: %w", t, err)
		}
	}
	return nil
}

// Main is a TestMain body for packages that drive the simulator: it builds esxisim into a temp
// folder, hands the folder to setBin, runs the tests and removes the build.
func Main(m *testing.M, setBin func(dir string)) int {
	dir, err := os.MkdirTemp("", "esxisim-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	setBin(dir)
	return m.Run()
}

// Config is a driver configuration for the simulated host at root, using the tools in binDir.
func Config(binDir, root string) esxi.Config {
	return esxi.Config{
		VimCmd:       filepath.Join(binDir, "vim-cmd"),
		Vmkfstools:   filepath.Join(binDir, "vmkfstools"),
		Esxcli:       filepath.Join(binDir, "esxcli"),
		Vmware:       filepath.Join(binDir, "vmware"),
		VMFSRoot:     root,
		Env:          append(os.Environ(), "SNAPFERRY_VMFS_ROOT="+root, "ESXISIM_FAULTS="),
		PollInterval: 20 * time.Millisecond,
		TaskTimeout:  20 * time.Second,
	}
}
