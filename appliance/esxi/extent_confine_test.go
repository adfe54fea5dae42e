package esxi_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/images/vmdk"
)

// A VM whose base descriptor names an extent outside its folder (../../../../etc/shadow, or an
// absolute path elsewhere) is refused when its configuration is read, with an error naming the
// descriptor and the extent, so no backup ever opens that file.
func TestConfigRefusesExtentOutsideTheVMFolder(t *testing.T) {
	for _, extent := range []string{"../../../../etc/shadow", "/etc/shadow"} {
		t.Run(strings.Trim(extent, "./"), func(t *testing.T) {
			h, drv := testHost(t)
			ctx := context.Background()
			id := addVM(t, h, sim.VMSpec{Name: "victim", Datastore: "datastore1", Disks: []sim.DiskSpec{{Size: 1 << 20}}})
			cfg, err := drv.Config(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			desc := cfg.Disks[0].Descriptor
			b, err := os.ReadFile(desc)
			if err != nil {
				t.Fatal(err)
			}
			line := regexp.MustCompile(`(?m)^(RW \d+ VMFS )"[^"]*"`)
			if !line.Match(b) {
				t.Fatalf("no extent line in %s:\n%s", desc, b)
			}
			// The same file by its absolute host path is fine: it is in the VM's folder.
			flat := filepath.Join(filepath.Dir(desc), strings.TrimSuffix(filepath.Base(desc), ".vmdk")+"-flat.vmdk")
			hostPath := drv.HostPath(flat)
			if !strings.HasPrefix(hostPath, "/vmfs/volumes/") {
				t.Fatalf("host path of %s: %s", flat, hostPath)
			}
			if err := os.WriteFile(desc, line.ReplaceAll(b, []byte(`${1}"`+hostPath+`"`)), 0o600); err != nil {
				t.Fatal(err)
			}
			if cfg, err := drv.Config(ctx, id); err != nil || !sameFile(cfg.Disks[0].Extent, flat) {
				t.Fatalf("extent by its absolute host path %s: %v", hostPath, err)
			}
			if err := os.WriteFile(desc, line.ReplaceAll(b, []byte(`${1}"`+extent+`"`)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = drv.Config(ctx, id)
			if !errors.Is(err, vmdk.ErrExtentOutside) || !strings.Contains(err.Error(), filepath.Base(desc)) || !strings.Contains(err.Error(), extent) {
				t.Fatalf("Config with extent %q: %v; want ErrExtentOutside naming %s and the extent", extent, err, desc)
			}
		})
	}
}
