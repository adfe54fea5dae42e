package vmdk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/disk/memblobs"
)

// confineCase is a VM folder whose descriptor names a file outside it, of exactly the size the
// descriptor promises, so that no size check can save the day.
type confineCase struct {
	desc, secret string
}

// newConfineCase writes root/ds/vm/web01.vmdk naming extent (a %s in it is replaced by the
// secret file's path) and root/secret of the descriptor's size.
func newConfineCase(t *testing.T, extent func(root, secret string) string) confineCase {
	t.Helper()
	root := t.TempDir()
	vm := filepath.Join(root, "ds", "vm")
	if err := os.MkdirAll(vm, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(root, "secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("s", 8*SectorSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	name := extent(root, secret)
	text := strings.Replace(string(readTestdata(t, "web01.vmdk")), `RW 75497472 VMFS "web01-flat.vmdk"`,
		"RW "+strconv.Itoa(8)+` VMFS "`+name+`"`, 1)
	desc := filepath.Join(vm, "web01.vmdk")
	if err := os.WriteFile(desc, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return confineCase{desc: desc, secret: secret}
}

// escapes are extents that leave the VM's folder in each way a descriptor can.
func escapes() map[string]func(root, secret string) string {
	return map[string]func(root, secret string) string{
		"dot-dot":  func(root, secret string) string { return "../../secret" },
		"deep":     func(root, secret string) string { return "../../../../../../../../" + strings.TrimPrefix(secret, "/") },
		"absolute": func(root, secret string) string { return secret },
		"symlink": func(root, secret string) string {
			link := filepath.Join(root, "ds", "vm", "web01-flat.vmdk")
			if err := os.Symlink(secret, link); err != nil {
				panic(err)
			}
			return "web01-flat.vmdk"
		},
		"symlinked folder": func(root, secret string) string {
			if err := os.Symlink(root, filepath.Join(root, "ds", "vm", "up")); err != nil {
				panic(err)
			}
			return "up/secret"
		},
	}
}

// A descriptor whose extent leaves the VM's folder is refused before the file is read, with an
// error naming the descriptor and the extent (an attacker-made descriptor named
// ../../../../etc/shadow and only the size check stopped the backup).
func TestBackupRefusesExtentOutsideTheVMFolder(t *testing.T) {
	for name, extent := range escapes() {
		t.Run(name, func(t *testing.T) {
			c := newConfineCase(t, extent)
			_, _, err := Backup(context.Background(), memblobs.New(1<<20), c.desc, disk.Options{})
			if err == nil {
				t.Fatalf("backed up %s through descriptor %s", c.secret, c.desc)
			}
			for _, want := range []string{c.desc, "outside the VM's folder"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestExtentPathConfines(t *testing.T) {
	for name, extent := range escapes() {
		c := newConfineCase(t, extent)
		d, _, err := ReadDescriptor(c.desc)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ExtentPath(c.desc, d.Extents[0])
		if !errors.Is(err, ErrExtentOutside) || !strings.Contains(err.Error(), strconv.Quote(d.Extents[0].File)) {
			t.Errorf("%s: %q, %v; want ErrExtentOutside naming the extent", name, p, err)
		}
	}
	// Accepted: the folder's own files, by any name that stays inside it.
	root := t.TempDir()
	vm := filepath.Join(root, "uuid-1234", "vm")
	if err := os.MkdirAll(filepath.Join(vm, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	flat := filepath.Join(vm, "web01-flat.vmdk")
	if err := os.WriteFile(flat, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// datastore1 -> uuid-1234, as /vmfs/volumes names datastores on ESXi.
	if err := os.Symlink(filepath.Join(root, "uuid-1234"), filepath.Join(root, "datastore1")); err != nil {
		t.Fatal(err)
	}
	desc := filepath.Join(root, "datastore1", "vm", "web01.vmdk")
	for _, name := range []string{"web01-flat.vmdk", "sub/../web01-flat.vmdk", flat, filepath.Join(root, "datastore1", "vm", "web01-flat.vmdk")} {
		p, err := ExtentPath(desc, Extent{File: name})
		if err != nil || p != flat {
			t.Errorf("extent %q: %q, %v; want %s", name, p, err, flat)
		}
	}
	// A missing extent inside the folder is returned as named; opening it reports it missing.
	if p, err := ExtentPath(desc, Extent{File: "gone-flat.vmdk"}); err != nil || p != filepath.Join(vm, "gone-flat.vmdk") {
		t.Errorf("missing extent: %q, %v", p, err)
	}
}
