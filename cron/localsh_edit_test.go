package cron

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/cron/testkit"
)

func TestEditLocalShFixture(t *testing.T) {
	orig := readFixture(t, "local.sh")
	body := PersistStanza(PersistOptions{Binary: "/vmfs/volumes/ds 1/snapferry", Home: "/vmfs/volumes/ds 1/var", FirewallDir: DefaultFirewallDir})
	got, err := EditLocalSh(orig, body)
	if err != nil {
		t.Fatal(err)
	}
	exitAt := strings.LastIndex(got, "\nexit 0\n")
	beginAt := strings.Index(got, StanzaBegin)
	endAt := strings.Index(got, StanzaEnd)
	if beginAt < 0 || endAt < beginAt || exitAt < endAt {
		t.Fatalf("stanza must stand before the final exit 0:\n%s", got)
	}
	// Everything outside the stanza is the original, byte for byte.
	outside := got[:beginAt] + got[endAt+len(StanzaEnd)+1:]
	if outside != orig {
		t.Fatalf("lines outside the stanza changed:\n%q\nwant\n%q", outside, orig)
	}
	again, err := EditLocalSh(got, body)
	if err != nil || again != got {
		t.Fatalf("second persist changed the file (err %v):\n%s", err, again)
	}
	// A different body replaces the stanza in place; nil removes it.
	body2 := PersistStanza(PersistOptions{Binary: "/opt/snapferry"})
	got2, err := EditLocalSh(got, body2)
	if err != nil || strings.Contains(got2, "<ConfigRoot>") || !strings.Contains(got2, "/opt/snapferry cron install") || strings.Count(got2, StanzaEnd) != 1 {
		t.Fatalf("replace (err %v):\n%s", err, got2)
	}
	removed, err := EditLocalSh(got2, nil)
	if err != nil || removed != orig {
		t.Fatalf("remove (err %v):\n%q", err, removed)
	}
}

func TestEditLocalShWithoutExit(t *testing.T) {
	body := []string{"echo hi"}
	got, err := EditLocalSh("#!/bin/sh\necho mine", body)
	if want := "#!/bin/sh\necho mine\n" + StanzaBegin + "\necho hi\n" + StanzaEnd + "\n"; err != nil || got != want {
		t.Fatalf("got %q (err %v)", got, err)
	}
	got, err = EditLocalSh("", body)
	if err != nil || !strings.HasPrefix(got, "#!/bin/sh\n"+StanzaBegin) {
		t.Fatalf("a new local.sh needs #!/bin/sh first: %q", got)
	}
	// An `exit 0` that is not last (a conditional early exit) is not the final exit.
	text := "#!/bin/sh\n[ -f /x ] && exit 0\necho more\n"
	got, _ = EditLocalSh(text, body)
	if !strings.HasPrefix(got, text) {
		t.Fatalf("stanza went before a non-final exit: %q", got)
	}
}

func TestEditLocalShDamagedStanza(t *testing.T) {
	_, err := EditLocalSh("#!/bin/sh\n"+StanzaBegin+"\necho x\nexit 0\n", []string{"y"})
	if err == nil || !strings.Contains(err.Error(), "no end marker") {
		t.Fatalf("want a clear error for a stanza without end, got %v", err)
	}
	_, err = EditLocalSh(StanzaBegin+"\n"+StanzaEnd+"\n"+StanzaBegin+"\n"+StanzaEnd+"\n", []string{"y"})
	if err == nil || !strings.Contains(err.Error(), "two snapferry stanzas") {
		t.Fatalf("want an error for two stanzas, got %v", err)
	}
}

func TestFirewallRuleFileMatchesScripts(t *testing.T) {
	b, err := os.ReadFile("../scripts/firewall/" + FirewallRuleName)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != FirewallRuleXML() {
		t.Fatalf("scripts/firewall/%s differs from FirewallRuleXML(); keep them identical", FirewallRuleName)
	}
	var root struct {
		XMLName xml.Name `xml:"ConfigRoot"`
		Service struct {
			ID    string `xml:"id"`
			Rules []struct {
				Direction string `xml:"direction"`
				Protocol  string `xml:"protocol"`
				Porttype  string `xml:"porttype"`
				Port      int    `xml:"port"`
			} `xml:"rule"`
			Enabled string `xml:"enabled"`
		} `xml:"service"`
	}
	if err := xml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var ports []int
	for _, r := range root.Service.Rules {
		if r.Direction != "outbound" || r.Protocol != "tcp" || r.Porttype != "dst" {
			t.Errorf("rule %+v is not outbound tcp dst", r)
		}
		ports = append(ports, r.Port)
	}
	if !slices.Equal(ports, []int{25, 465, 587}) || root.Service.Enabled != "true" {
		t.Fatalf("ports %v enabled %q", ports, root.Service.Enabled)
	}
}

// TestPersistStanzaRunsUnderBusybox runs the stanza the way local.sh would at boot, with the
// snapferry binary and esxcli replaced by scripts that record their arguments.
func TestPersistStanzaRunsUnderBusybox(t *testing.T) {
	busybox := testkit.RequireTool(t, "busybox")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin dir")
	home := filepath.Join(dir, "state 'home'")
	fwDir := filepath.Join(dir, "firewall")
	for _, d := range []string{bin, filepath.Join(home, "cron"), fwDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	record := filepath.Join(dir, "calls")
	script := "#!/bin/sh\nfor a in \"$(basename \"$0\")\" \"$@\"; do printf '%s|' \"$a\" >> '" + record + "'; done; echo >> '" + record + "'\necho ran\n"
	for _, name := range []string{"snapferry", "esxcli"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	local := filepath.Join(dir, "local.sh")
	if err := os.WriteFile(local, []byte(readFixture(t, "local.sh")), 0o755); err != nil {
		t.Fatal(err)
	}
	body := PersistStanza(PersistOptions{Binary: filepath.Join(bin, "snapferry"), Home: home, Crontab: "/var/spool/cron/crontabs/root", FirewallDir: fwDir})
	for i := 0; i < 2; i++ {
		changed, err := Persist(local, body)
		if err != nil || changed != (i == 0) {
			t.Fatalf("persist %d: changed %v err %v", i, changed, err)
		}
	}
	if fi, _ := os.Stat(local); fi.Mode().Perm() != 0o755 {
		t.Fatalf("local.sh lost its mode: %v", fi.Mode())
	}
	// The fixture's own line calls esxcli too: both run, in file order.
	cmd := exec.Command(busybox, "sh", local)
	cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("local.sh: %v\n%s", err, out)
	}
	calls, _ := os.ReadFile(record)
	want := "esxcli|network|firewall|ruleset|set|--ruleset-id=sshClient|--enabled=true|\n" +
		"esxcli|network|firewall|refresh|\n" +
		"snapferry|--home=" + home + "|cron|install|--crontab=/var/spool/cron/crontabs/root|\n"
	if string(calls) != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", calls, want)
	}
	rule, err := os.ReadFile(filepath.Join(fwDir, FirewallRuleName))
	if err != nil || string(rule) != FirewallRuleXML() {
		t.Fatalf("firewall rule written at boot differs (err %v):\n%s", err, rule)
	}
	if log, _ := os.ReadFile(filepath.Join(home, "cron", "boot.log")); string(log) != "ran\n" {
		t.Fatalf("boot.log %q", log)
	}
}
