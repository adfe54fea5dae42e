package lvtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// Daemon is a running private libvirtd.
type Daemon struct {
	Dir string // its folder (sockets, config, logs)
	URI string // qemu:///system?socket=DIR/run/libvirt-sock
}

// scripts finds scripts/libvirt beside this source file's module root.
func scripts() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "libvirt")
}

// StartIn starts a daemon with its state in dir (short: unix socket paths are limited), owned
// by this process: if it dies without calling Stop (a go test -timeout panic skips every
// cleanup), start.sh's watcher stops the daemon and its QEMUs.
func StartIn(dir string) (*Daemon, error) { return startOwned(dir, os.Getpid()) }

func startOwned(dir string, owner int) (*Daemon, error) {
	for _, tool := range []string{"qemu-img", "qemu-nbd", "qemu-io", "qemu-system-x86_64", "virsh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found", tool)
		}
	}
	out, err := exec.Command("bash", filepath.Join(scripts(), "start.sh"), dir, strconv.Itoa(owner)).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("scripts/libvirt/start.sh: %v\n%s", err, out)
	}
	return &Daemon{Dir: dir, URI: "qemu:///system?socket=" + filepath.Join(dir, "run", "libvirt-sock")}, nil
}

// Stop ends the daemon and the QEMU processes it started.
func (d *Daemon) Stop() error {
	out, err := exec.Command("bash", filepath.Join(scripts(), "stop.sh"), d.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/libvirt/stop.sh: %v\n%s", err, out)
	}
	return nil
}

// Start starts a daemon for the test, stopped (and its folder removed) when the test ends.
func Start(t testing.TB) *Daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "sflv")
	if err == nil {
		var d *Daemon
		if d, err = StartIn(dir); err == nil {
			t.Cleanup(func() {
				if err := d.Stop(); err != nil {
					t.Error(err)
				}
				os.RemoveAll(dir)
			})
			return d
		}
		os.RemoveAll(dir)
	}
	Unavailable(t, err)
	return nil
}

// Unavailable skips the test for err, or fails it under CI.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("libvirt harness: %v (CI installs libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients, qemu-system-x86, qemu-utils)", err)
	}
	t.Skipf("libvirt harness: %v", err)
}
