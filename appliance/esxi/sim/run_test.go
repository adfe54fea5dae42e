package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The multi-call entry point as cmd/esxisim calls it: personalities by link name or first
// argument, setup commands, the simulated guest, and clear usage errors.
func TestRunEntryPoints(t *testing.T) {
	root := filepath.Join(t.TempDir(), "host")
	env := map[string]string{"ESXISIM_ROOT": root}
	getenv := func(k string) string { return env[k] }
	call := func(argv0 string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := Run(argv0, args, getenv, &out, &errb)
		return out.String(), errb.String(), code
	}
	if _, errs, code := call("/usr/bin/esxisim"); code != 2 || !strings.Contains(errs, "usage") {
		t.Errorf("no arguments: exit %d, %q", code, errs)
	}
	if _, errs, code := call("esxisim", "vim-cmd", "vmsvc/getallvms"); code != 1 || !strings.Contains(errs, "esxisim init") {
		t.Errorf("before init: exit %d, %q", code, errs)
	}
	if out, errs, code := call("esxisim", "demo", root); code != 0 || !strings.Contains(out, "web [demo] 01") {
		t.Fatalf("demo: exit %d, %q %q", code, out, errs)
	}
	if out, _, code := call("/tmp/bin/vim-cmd", "vmsvc/getallvms"); code != 0 || !strings.Contains(out, "[datastore1] web [demo] 01/web [demo] 01.vmx") {
		t.Errorf("vim-cmd link: exit %d, %q", code, out)
	}
	if out, _, code := call("esxisim", "vmware", "-v"); code != 0 || out != "VMware ESXi 6.5.0 build-10719125\n" {
		t.Errorf("esxisim vmware -v: exit %d, %q", code, out)
	}
	if _, errs, code := call("esxisim", "frobnicate"); code != 2 || !strings.Contains(errs, "unknown personality") {
		t.Errorf("unknown personality: exit %d, %q", code, errs)
	}
	if _, errs, code := call("esxisim", "guest", "write", "1", "scsi0:0", "4096", "10", "--pattern", "5"); code != 0 {
		t.Fatalf("guest write: exit %d, %q", code, errs)
	}
	if _, errs, code := call("esxisim", "guest", "write", "1", "scsi0:0", "x", "10", "--pattern", "5"); code != 1 || !strings.Contains(errs, "OFF LEN") {
		t.Errorf("guest write with a bad offset: exit %d, %q", code, errs)
	}
	if _, errs, code := call("esxisim", "guest", "write", "1", "scsi9:9", "0", "10", "--pattern", "5"); code != 1 || !strings.Contains(errs, "no disk") {
		t.Errorf("guest write to a missing disk: exit %d, %q", code, errs)
	}
	dst := filepath.Join(t.TempDir(), "disk.img")
	if _, errs, code := call("esxisim", "guest", "export", "1", "vmdk0", dst); code != 0 {
		t.Fatalf("guest export: exit %d, %q", code, errs)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 10)
	Pattern(5, 4096, want)
	if !bytes.Equal(b[4096:4106], want) || len(b) != 64<<20 {
		t.Errorf("exported disk: %d bytes, write %x, want %x", len(b), b[4096:4106], want)
	}
	if _, errs, code := call("esxisim", "esxcli", "network", "ip"); code != 1 || !strings.Contains(errs, "not simulated") {
		t.Errorf("esxcli other: exit %d, %q", code, errs)
	}
	if _, errs, code := call("esxisim", "vmkfstools", "-i", "/vmfs/volumes/datastore1/x.vmdk", "-d", "eagerzeroedthick", "/vmfs/volumes/datastore1/y.vmdk"); code != 1 || !strings.Contains(errs, "only thin") {
		t.Errorf("vmkfstools -d eagerzeroedthick: exit %d, %q", code, errs)
	}
}
