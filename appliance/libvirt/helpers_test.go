package libvirt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/libvirt/lvtest"
)

// daemon is the private libvirtd that TestMain starts through scripts/libvirt/start.sh for
// the whole package; its URI, or why it could not start.
var daemon struct {
	uri string
	err error
}

func TestMain(m *testing.M) {
	flag.Parse()
	// Fuzz targets need no daemon; fuzz workers run TestMain too.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		daemon.err = errors.New("not started while fuzzing")
		os.Exit(m.Run())
	}
	code := func() int {
		dir, err := os.MkdirTemp("", "sflv")
		if err != nil {
			daemon.err = err
			return m.Run()
		}
		defer os.RemoveAll(dir)
		lv, err := lvtest.StartIn(dir)
		if err != nil {
			daemon.err = err
			return m.Run()
		}
		defer lv.Stop()
		daemon.uri = lv.URI
		return m.Run()
	}()
	os.Exit(code)
}

// needLibvirt connects to the package's libvirtd, skipping the test when it could not start
// (failing under CI, which installs libvirt and QEMU).
func needLibvirt(t *testing.T) *Driver {
	t.Helper()
	if daemon.err != nil {
		lvtest.Unavailable(t, daemon.err)
	}
	d, err := Open(testCtx(t), daemon.uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// testDomain defines (and, when start, starts) a TCG domain named name with one virtio disk per
// image path (vda, vdb...), removed with the test.
func testDomain(t *testing.T, d *Driver, name string, start bool, images ...string) appliance.VM {
	t.Helper()
	var disks strings.Builder
	for i, img := range images {
		format := "raw"
		if strings.HasSuffix(img, ".qcow2") {
			format = "qcow2"
		}
		fmt.Fprintf(&disks, `<disk type='file' device='disk'><driver name='qemu' type='%s'/><source file='%s'/><target dev='vd%c' bus='virtio'/></disk>`, format, img, 'a'+i)
	}
	xml := fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices>%s<interface type='user'><mac address='52:54:00:aa:bb:cc'/><model type='virtio'/></interface></devices></domain>`, name, disks.String())
	return vmOf(defineTestDomain(t, d, xml, start))
}

// defineTestDomain defines a domain from its XML and, when start, starts it; it is destroyed
// and undefined with the test.
func defineTestDomain(t *testing.T, d *Driver, xml string, start bool) golibvirt.Domain {
	t.Helper()
	dom, err := d.l.DomainDefineXMLFlags(xml, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if st, _, err := d.l.DomainGetState(dom, 0); err == nil && golibvirt.DomainState(st) != golibvirt.DomainShutoff {
			_ = d.l.DomainDestroy(dom)
		}
		_ = d.l.DomainUndefineFlags(dom, golibvirt.DomainUndefineCheckpointsMetadata)
	})
	if start {
		if err := d.l.DomainCreate(dom); err != nil {
			t.Fatal(err)
		}
	}
	return dom
}

// guestWrite writes pattern bytes into a running domain's disk through QEMU's monitor
// (qemu-io on the disk's qdev), as a guest would: the dirty bitmap sees it.
func guestWrite(t *testing.T, d *Driver, vm appliance.VM, target string, pattern byte, off, n int64) {
	t.Helper()
	dom, err := d.domain(vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.l.QEMUDomainMonitorCommand(dom, `{"execute":"query-block"}`, 0)
	if err != nil {
		t.Fatal(err)
	}
	var qb struct {
		Return []struct {
			Qdev     string `json:"qdev"`
			Inserted struct {
				File string `json:"file"`
			} `json:"inserted"`
		} `json:"return"`
	}
	if err := json.Unmarshal([]byte(out), &qb); err != nil {
		t.Fatal(err)
	}
	cfg, err := d.Config(testCtx(t), vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	idx := -1
	for i, dk := range cfg.Disks {
		if dk.Name == target {
			idx = i
		}
	}
	qdev := ""
	for _, b := range qb.Return {
		if strings.Contains(b.Qdev, fmt.Sprintf("virtio-disk%d/", idx)) {
			qdev = b.Qdev
		}
	}
	if qdev == "" {
		t.Fatalf("no qdev for disk %s in %s", target, out)
	}
	// The flush writes QEMU's cached qcow2 metadata out, so tools reading the file see the write.
	for _, c := range []string{fmt.Sprintf("write -P 0x%02x %d %d", pattern, off, n), "flush"} {
		cmd := fmt.Sprintf(`qemu-io -d %s "%s"`, qdev, c)
		res, err := d.l.QEMUDomainMonitorCommand(dom, cmd, 1) // 1: HMP
		if err != nil || strings.Contains(res, "rror") {
			t.Fatalf("%s: %v %s", cmd, err, res)
		}
	}
}

// qemuImg creates an image of the given format and size, filled at the listed offsets with
// patterns through qemu-io.
func qemuImg(t *testing.T, dir, name, format string, size int64, writes ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if format == "raw" {
		// qemu-img create writes the first 4 KiB of a raw image; a sparse file has no data.
		if err := os.WriteFile(p, nil, 0o600); err != nil || os.Truncate(p, size) != nil {
			t.Fatalf("create %s: %v", p, err)
		}
	} else {
		run(t, "qemu-img", "create", "-q", "-f", format, p, fmt.Sprint(size))
	}
	for _, w := range writes {
		run(t, "qemu-io", "-f", format, "-c", w, p)
	}
	return p
}

// sameDisk compares two images' guest-visible contents with qemu-img compare.
func sameDisk(t *testing.T, a, b string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "compare", "-U", a, b).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img compare %s %s: %v\n%s", a, b, err, bytes.TrimSpace(out))
	}
}
