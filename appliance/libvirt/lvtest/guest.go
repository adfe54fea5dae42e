package lvtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
)

// Guest is the tiny Linux guest of scripts/libvirt/guest-initramfs.sh: Debian's cloud kernel and
// an initramfs whose /init mounts /dev/vda (ext4) and runs qemu-ga, so a test has a real QEMU
// guest agent to quiesce.
type Guest struct {
	Kernel, Initrd string
}

// BuildGuest builds the guest's kernel and initramfs into a folder of the test. It skips the
// test when the kernel (installed linux-image-cloud-amd64, or $GUEST_KERNEL_ROOT filled by
// scripts/libvirt/guest-kernel.sh) or qemu-ga is missing, or fails it under CI (.ci/run installs
// qemu-guest-agent and unpacks the kernel).
func BuildGuest(t testing.TB) Guest {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(scripts(), "guest-initramfs.sh"), t.TempDir()).CombinedOutput()
	testkit.Require(t, err == nil, "guest for the quiesce tests: scripts/libvirt/guest-initramfs.sh: %v\n%s", err, out)
	var g Guest
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "KERNEL="); ok {
			g.Kernel = v
		}
		if v, ok := strings.CutPrefix(line, "INITRD="); ok {
			g.Initrd = v
		}
	}
	if g.Kernel == "" || g.Initrd == "" {
		t.Fatalf("guest-initramfs.sh printed no KERNEL= and INITRD=:\n%s", out)
	}
	return g
}

// DomainXML is a TCG domain booting the guest with disk (qcow2) as vda, its serial console
// written to console, and the guest agent's virtio-serial channel.
func (g Guest) DomainXML(name, disk, console string) string {
	return fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel><initrd>%s</initrd>
<cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
<devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>
<serial type='file'><source path='%s'/><target port='0'/></serial>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
</devices></domain>`, name, g.Kernel, g.Initrd, disk, console)
}

// Ext4Disk makes a 64 MiB qcow2 image holding an ext4 file system with one file, for the guest
// to mount and the agent to freeze.
func Ext4Disk(t testing.TB, dir string) string {
	t.Helper()
	mkfs := testkit.RequireTool(t, "mkfs.ext4")
	content := filepath.Join(dir, "content")
	if err := os.MkdirAll(content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(content, "hello.txt"), []byte("written before the backup\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, img := filepath.Join(dir, "guest.raw"), filepath.Join(dir, "guest.qcow2")
	for _, c := range [][]string{
		{mkfs, "-q", "-F", "-d", content, raw, "64M"},
		{"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, img},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	os.Remove(raw)
	return img
}

// AgentCommand sends one QMP command to the domain's guest agent through libvirt (virsh
// qemu-agent-command) and returns the agent's "return" value.
func AgentCommand(uri, domain, cmd string) (json.RawMessage, error) {
	out, err := exec.Command("virsh", "-c", uri, "qemu-agent-command", "--timeout", "10", domain, cmd).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("virsh qemu-agent-command %s %s: %v: %s", domain, cmd, err, bytes.TrimSpace(out))
	}
	var r struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("agent answer %q: %v", out, err)
	}
	return r.Return, nil
}

// WaitAgent waits until the domain's guest agent answers guest-ping and returns how long that
// took.
func WaitAgent(t testing.TB, uri, domain string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	if !testkit.Poll(timeout, func() bool {
		_, last = AgentCommand(uri, domain, `{"execute":"guest-ping"}`)
		return last == nil
	}) {
		t.Fatalf("the guest agent of %s did not answer guest-ping within %s: %v", domain, timeout, last)
	}
	return time.Since(start)
}

// FreezeStatus is the agent's guest-fsfreeze-status: "thawed" or "frozen".
func FreezeStatus(t testing.TB, uri, domain string) string {
	t.Helper()
	r, err := AgentCommand(uri, domain, `{"execute":"guest-fsfreeze-status"}`)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		t.Fatalf("guest-fsfreeze-status answered %s: %v", r, err)
	}
	return s
}

// GuestWriteFile writes a file inside the guest through the agent's guest-file-* commands (the
// guest refuses them while frozen).
func GuestWriteFile(t testing.TB, uri, domain, path, content string) {
	t.Helper()
	r, err := AgentCommand(uri, domain, fmt.Sprintf(`{"execute":"guest-file-open","arguments":{"path":%q,"mode":"w"}}`, path))
	if err != nil {
		t.Fatal(err)
	}
	var h int64
	if err := json.Unmarshal(r, &h); err != nil {
		t.Fatalf("guest-file-open answered %s: %v", r, err)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(content))
	for _, c := range []string{
		fmt.Sprintf(`{"execute":"guest-file-write","arguments":{"handle":%d,"buf-b64":%q}}`, h, b64),
		fmt.Sprintf(`{"execute":"guest-file-close","arguments":{"handle":%d}}`, h),
	} {
		if _, err := AgentCommand(uri, domain, c); err != nil {
			t.Fatal(err)
		}
	}
}

// ConsoleLines counts the lines of the guest's console file that are s (spaces and the
// serial line's carriage returns around them aside).
func ConsoleLines(t testing.TB, console, s string) int {
	t.Helper()
	b, err := os.ReadFile(console)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == s {
			n++
		}
	}
	return n
}
