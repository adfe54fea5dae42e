package guestfs

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mkLVM makes an LVM2 physical volume image with the lvm2 tools: a volume group with "root"
// (made in two pieces, so it has two segments with "home" between them) and "home", each holding
// the given file-system image. The tools need a block device, so the image is attached to a
// loop device for the few seconds this takes; no device-mapper is needed (--driverloaded n,
// volumes never activated), which is why this also works in containers.
func mkLVM(t testing.TB, root, home string) string {
	t.Helper()
	needRoot(t)
	needTool(t, "losetup", "pvcreate", "vgcreate", "lvcreate", "lvextend", "lvs", "vgexport")
	img := filepath.Join(t.TempDir(), "pv.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	vg := fmt.Sprintf("sfvg%d", os.Getpid())
	lvm := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(args[0], append([]string{"--devices", loop}, args[1:]...)...)
		cmd.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	lvm("pvcreate", "-q", loop)
	lvm("vgcreate", "-q", vg, loop)
	lvm("lvcreate", "--driverloaded", "n", "-q", "-an", "-Zn", "-L", "8M", "-n", "root", vg)
	lvm("lvcreate", "--driverloaded", "n", "-q", "-an", "-Zn", "-L", "12M", "-n", "home", vg)
	lvm("lvextend", "--driverloaded", "n", "-q", "-L", "16M", vg+"/root")
	rep := lvm("lvs", "--driverloaded", "n", "--segments", "--units", "b", "--nosuffix", "--reportformat", "json",
		"-o", "lv_name,seg_start,seg_pe_ranges,vg_extent_size", vg)
	peStart, err := strconv.ParseInt(strings.TrimSpace(string(lvm("pvs", "--units", "b", "--nosuffix", "--noheadings", "-o", "pe_start"))), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	lvm("vgexport", vg) // so no later scan of this loop device's host takes the group for its own
	var j struct {
		Report []struct {
			Seg []struct {
				LV, Start, Ranges, Extent string
			} `json:"seg"`
		} `json:"report"`
	}
	// lvs names its JSON fields lv_name, seg_start, ...; map them.
	s := strings.NewReplacer(`"lv_name"`, `"LV"`, `"seg_start"`, `"Start"`, `"seg_pe_ranges"`, `"Ranges"`, `"vg_extent_size"`, `"Extent"`).Replace(string(rep))
	if err := json.Unmarshal([]byte(s), &j); err != nil || len(j.Report) == 0 {
		t.Fatalf("lvs json: %v\n%s", err, rep)
	}
	src := map[string]string{"root": root, "home": home}
	for _, seg := range j.Report[0].Seg {
		ext, _ := strconv.ParseInt(seg.Extent, 10, 64)
		start, _ := strconv.ParseInt(seg.Start, 10, 64)
		r := seg.Ranges[strings.LastIndexByte(seg.Ranges, ':')+1:]
		a, b, _ := strings.Cut(r, "-")
		pa, _ := strconv.ParseInt(a, 10, 64)
		pb, _ := strconv.ParseInt(b, 10, 64)
		copyRange(t, img, src[seg.LV], start, (pb-pa+1)*ext, peStart+pa*ext)
	}
	return img
}

// copyRange copies n bytes at off of src to dst at at.
func copyRange(t testing.TB, dst, src string, off, n, at int64) {
	t.Helper()
	data := make([]byte, n)
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	m, _ := in.ReadAt(data, off)
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.WriteAt(data[:m], at); err != nil {
		t.Fatal(err)
	}
}

func TestLVMLinearVolumes(t *testing.T) {
	src, tr := makeTree(t, true, 200)
	root := mkfsImage(t, "ext4", src, 16<<20-4096*0)
	hsrc, htr := makeTreeFor(t, false, 20, true)
	home := mkfsImage(t, "vfat16", hsrc, 12<<20)
	pv := mkLVM(t, root, home)
	disk := mkDisk(t, "gpt", "size=8M, type=linux\nsize=80M, type=lvm\n", map[int]string{2: pv})
	d := openDisk(t, disk)
	p2 := vol(t, d, "p2")
	if p2.FSType != "lvm2" || p2.Type != "Linux LVM" || len(p2.LVs) != 2 || p2.Problem != "" {
		t.Fatalf("p2 = %+v", p2)
	}
	vg := fmt.Sprintf("sfvg%d", os.Getpid())
	r := vol(t, d, "p2", vg, "root")
	if r.FSType != "ext4" || r.Size != 16<<20 {
		t.Fatalf("root LV = %+v", r)
	}
	checkTree(t, openFS(t, r), tr, caps{symlinks: true, hardlinks: true, modes: true}, false)
	checkTree(t, openFS(t, vol(t, d, "p2", vg, "home")), htr, caps{}, true)
	if _, err := p2.OpenFS(); err == nil || !strings.Contains(err.Error(), "logical volume") {
		t.Errorf("OpenFS of the PV itself: %v", err)
	}
	if _, _, err := d.Find([]string{"p2", vg, "nosuch"}); err == nil {
		t.Error("Find of a missing LV succeeded")
	}
}

const lvmSample = `vg0 {
id = "abc"
seqno = 3
extent_size = 8192
physical_volumes {
pv0 {
id = "AAAAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGGGG"
pe_start = 2048
pe_count = 100
}
}
logical_volumes {
root {
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 1
segment1 {
start_extent = 0
extent_count = 10
type = "striped"
stripe_count = 1
stripes = [
"pv0", 0
]
}
}
}
}
`
