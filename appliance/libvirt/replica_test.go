package libvirt

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/transfer/replica"
)

// The mirror's identity is derived, not drawn: the same domain and mirror name give the same
// UUID and MAC addresses on every run (so a defined mirror can be redefined from a newer run),
// different from the original's and from another mirror's.
func TestMirrorIdentityIsStable(t *testing.T) {
	const src = `<domain type='qemu'><name>web</name><uuid>11111111-2222-3333-4444-555555555555</uuid>` +
		`<os><type>hvm</type><loader type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram></os><devices>` +
		`<interface type='network'><mac address='52:54:00:01:02:03'/><source network='default'/></interface>` +
		`<interface type='network'><source network='lan'/></interface></devices></domain>`
	a, err := stableIdentity(src, "uuid-a\x00web-replica")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := stableIdentity(src, "uuid-a\x00web-replica")
	other, _ := stableIdentity(src, "uuid-b\x00web-replica")
	if a != again {
		t.Fatalf("two runs gave two identities:\n%s\n%s", a, again)
	}
	uuid := regexp.MustCompile(`<uuid>([0-9a-f-]{36})</uuid>`)
	mac := regexp.MustCompile(`address="(52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2})"`)
	ua, uo := uuid.FindStringSubmatch(a), uuid.FindStringSubmatch(other)
	if ua == nil || uo == nil || ua[1] == uo[1] || strings.Contains(a, "11111111-2222") || strings.Count(a, "<uuid>") != 1 {
		t.Fatalf("mirror UUIDs: %v %v in\n%s", ua, uo, a)
	}
	macs := mac.FindAllStringSubmatch(a, -1)
	if len(macs) != 2 || macs[0][1] == macs[1][1] || strings.Contains(a, "52:54:00:01:02:03") {
		t.Fatalf("mirror MACs %v in\n%s", macs, a)
	}
	if strings.Contains(a, "nvram") || !strings.Contains(a, "OVMF_CODE") {
		t.Errorf("the mirror keeps the original's UEFI variables file, or lost its loader:\n%s", a)
	}
	if !strings.Contains(a, `<source network="lan"/>`) {
		t.Errorf("the rest of the XML was not kept:\n%s", a)
	}
}

// Each replica target and domain has its own checkpoint chain, which no repository chain (hex)
// can be.
func TestReplicaChainNames(t *testing.T) {
	a, b, c := replicaChain("ssh://dr/x", "web"), replicaChain("ssh://dr/y", "web"), replicaChain("ssh://dr/x", "db")
	if a == b || a == c || len(a) != 12 || a[0] != 'r' || a != replicaChain("ssh://dr/x", "web") {
		t.Fatalf("chains %q %q %q", a, b, c)
	}
}

// A record is replaced atomically and read back; a damaged one counts as none.
func TestReplicaRecordRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "replicas", "r1.json")
	if rec, err := loadRecord(p); rec != nil || err != nil {
		t.Fatalf("missing record: %v %v", rec, err)
	}
	want := &replicaRecord{Target: "ssh://dr/x", Set: "web", Domain: "u", Checkpoint: "snapferry-r1-j1",
		Disks: map[string]recordDisk{"vda": {File: "web-vda.raw", Size: 1 << 20, Mark: replica.Mark{Exists: true, Size: 1 << 20, Mtime: 5, Seed: 7}}}}
	if err := saveRecord(p, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadRecord(p)
	if err != nil || got == nil || got.Checkpoint != want.Checkpoint || got.Disks["vda"] != want.Disks["vda"] {
		t.Fatalf("record read back: %+v %v", got, err)
	}
	if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rec, err := loadRecord(p); rec != nil || err != nil {
		t.Fatalf("damaged record: %v %v", rec, err)
	}
}
