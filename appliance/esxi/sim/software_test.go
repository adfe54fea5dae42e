package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/esxi/vib"
)

func writeVIB(t *testing.T, dir, version string) string {
	t.Helper()
	b, err := vib.Build(vib.Package{Name: "snapferry", Vendor: "snapferry", Version: version, ReleaseDate: time.Unix(0, 0),
		Files: []vib.File{{Path: "opt/snapferry/snapferry", Mode: 0o755, Data: []byte("binary " + version)}}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "snapferry-"+version+".vib")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The VIB life cycle on ESXi 8 as install-esxi.sh drives it: refused at the default acceptance
// level and without --no-sig-check, installed after the level is lowered, upgraded, skipped when
// the same version is installed again, listed and removed; a Secure Boot host refuses to lower
// the level.
func TestSoftwareVIBLifeCycle(t *testing.T) {
	h := newTestHost(t, "datastore1")
	if err := h.Configure("8.0.2", "22380479", false, false); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	v1, v2 := writeVIB(t, dir, "1.2.3-1.0.0"), writeVIB(t, dir, "1.2.3-1.4.0")
	const id1, id2 = "snapferry_bootbank_snapferry_1.2.3-1.0.0", "snapferry_bootbank_snapferry_1.2.3-1.4.0"

	if got := mustRun(t, h, "esxcli", "software", "acceptance", "get"); got != "PartnerSupported\n" {
		t.Errorf("acceptance get %q", got)
	}
	_, errs, code := run(h, nil, "esxcli", "software", "vib", "install", "-v", v1, "--no-sig-check")
	if code != 1 || !strings.Contains(errs, "[AcceptanceLevelError]") ||
		!strings.Contains(errs, "VIB "+id1+"'s acceptance level is community, which is not compliant with the ImageProfile acceptance level partner") {
		t.Errorf("install at partner level: exit %d\n%s", code, errs)
	}
	if got := mustRun(t, h, "esxcli", "software", "acceptance", "set", "--level=CommunitySupported"); got != "Host acceptance level changed to 'CommunitySupported'.\n" {
		t.Errorf("acceptance set %q", got)
	}
	if _, errs, code := run(h, nil, "esxcli", "software", "vib", "install", "-v", v1); code != 1 || !strings.Contains(errs, "--no-sig-check") {
		t.Errorf("unsigned install without --no-sig-check: exit %d\n%s", code, errs)
	}
	want := "Installation Result\n   Message: Operation finished successfully.\n   Reboot Required: false\n" +
		"   VIBs Installed: " + id1 + "\n   VIBs Removed: \n   VIBs Skipped: \n"
	if got := mustRun(t, h, "esxcli", "software", "vib", "install", "-v", v1, "--no-sig-check"); got != want {
		t.Errorf("install:\n%q\nwant\n%q", got, want)
	}
	if got := mustRun(t, h, "esxcli", "software", "vib", "install", "--viburl="+v2, "--no-sig-check"); !strings.Contains(got, "VIBs Installed: "+id2+"\n   VIBs Removed: "+id1+"\n") {
		t.Errorf("upgrade:\n%s", got)
	}
	if got := mustRun(t, h, "esxcli", "software", "vib", "install", "-v", v2, "--no-sig-check"); !strings.Contains(got, "Host is not changed.") || !strings.Contains(got, "VIBs Skipped: "+id2) {
		t.Errorf("same version again:\n%s", got)
	}
	list := mustRun(t, h, "esxcli", "software", "vib", "list")
	lines := strings.Split(strings.TrimSuffix(list, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "Name       Version      Vendor     Acceptance Level    Install Date") ||
		!strings.HasPrefix(lines[2], "snapferry  1.2.3-1.4.0  snapferry  CommunitySupported  ") {
		t.Errorf("vib list:\n%s", list)
	}
	if got := mustRun(t, h, "esxcli", "software", "vib", "remove", "-n", "snapferry"); !strings.Contains(got, "Removal Result") || !strings.Contains(got, "VIBs Removed: "+id2) {
		t.Errorf("remove:\n%s", got)
	}
	if _, errs, code := run(h, nil, "esxcli", "software", "vib", "remove", "-n", "snapferry"); code != 1 ||
		!strings.Contains(errs, "[NoMatchError]\n No VIB matching VIB search specification 'snapferry'.") {
		t.Errorf("remove twice: exit %d\n%s", code, errs)
	}

	// Secure Boot: the level cannot go down to community, and encryption get shows the settings.
	if err := h.SetSecurity(true, true, true); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := run(h, nil, "esxcli", "software", "acceptance", "set", "--level=CommunitySupported"); code != 1 ||
		!strings.Contains(errs, "Secure Boot enabled: Cannot change acceptance level to community.") {
		t.Errorf("acceptance set under Secure Boot: exit %d\n%s", code, errs)
	}
	if got := mustRun(t, h, "esxcli", "system", "settings", "encryption", "get"); got != "   Mode: TPM\n   Require Executables Only From Installed VIBs: true\n   Require Secure Boot: true\n" {
		t.Errorf("encryption get %q", got)
	}
	if _, errs, code := run(h, nil, "esxcli", "software", "vib", "install", "-v", filepath.Join(dir, "missing.vib"), "--no-sig-check"); code != 1 || !strings.Contains(errs, "VibDownloadError") {
		t.Errorf("missing file: exit %d\n%s", code, errs)
	}
}
