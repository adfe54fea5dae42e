package sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance/vmx"
)

// vmsdSnap is one snapshot as the simulator keeps it in the .vmsd.
type vmsdSnap struct {
	UID, Parent, Name, Description string
	Created                        time.Time
	Disks                          [][2]string // (node, descriptor file name the snapshot froze)
}

type vmsdFile struct {
	LastUID int
	Current string
	Snaps   []vmsdSnap
}

func (v *simVM) vmsdPath() string { return v.dir + "/" + v.stem() + ".vmsd" }

func (v *simVM) readVMSD() (*vmsdFile, error) {
	b, err := os.ReadFile(v.vmsdPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", v.vmsdPath(), err)
	}
	kv, err := vmx.Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", v.vmsdPath(), err)
	}
	parsed, err := vmx.ParseVMSD(string(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", v.vmsdPath(), err)
	}
	out := &vmsdFile{Current: parsed.Current}
	out.LastUID, _ = strconv.Atoi(kv.Value("snapshot.lastUID"))
	for i, p := range parsed.Snapshots {
		s := vmsdSnap{UID: p.UID, Parent: p.Parent, Name: p.Name, Description: p.Description}
		// The created time is kept as hosts keep it: microseconds split in two 32-bit halves.
		pre := "snapshot" + strconv.Itoa(i) + "."
		hi, _ := strconv.ParseInt(kv.Value(pre+"createTimeHigh"), 10, 64)
		lo, _ := strconv.ParseInt(kv.Value(pre+"createTimeLow"), 10, 64)
		s.Created = time.UnixMicro(hi<<32 | int64(uint32(lo))).UTC()
		nodes := make([]string, 0, len(p.Disks))
		for n := range p.Disks {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		for _, n := range nodes {
			s.Disks = append(s.Disks, [2]string{n, p.Disks[n]})
		}
		out.Snaps = append(out.Snaps, s)
	}
	return out, nil
}

func (v *simVM) writeVMSD(f *vmsdFile) error {
	var b strings.Builder
	kv := func(k, val string) { fmt.Fprintf(&b, "%s = %s\n", k, vmx.EncodeValue(val)) }
	kv(".encoding", "UTF-8")
	// lastUID outlives the snapshots: ids are never reused on a host.
	if f.LastUID > 0 {
		kv("snapshot.lastUID", strconv.Itoa(f.LastUID))
	}
	if len(f.Snaps) > 0 {
		kv("snapshot.current", f.Current)
	}
	for i, s := range f.Snaps {
		p := "snapshot" + strconv.Itoa(i) + "."
		kv(p+"uid", s.UID)
		kv(p+"filename", v.stem()+"-Snapshot"+s.UID+".vmsn")
		if s.Parent != "" {
			kv(p+"parent", s.Parent)
		}
		kv(p+"displayName", s.Name)
		if s.Description != "" {
			kv(p+"description", s.Description)
		}
		us := s.Created.UnixMicro()
		kv(p+"createTimeHigh", strconv.FormatInt(us>>32, 10))
		kv(p+"createTimeLow", strconv.FormatInt(int64(int32(uint32(us))), 10))
		kv(p+"numDisks", strconv.Itoa(len(s.Disks)))
		for j, d := range s.Disks {
			kv(p+"disk"+strconv.Itoa(j)+".fileName", d[1])
			kv(p+"disk"+strconv.Itoa(j)+".node", d[0])
		}
	}
	if len(f.Snaps) > 0 {
		kv("snapshot.numSnapshots", strconv.Itoa(len(f.Snaps)))
	}
	return writeFileAtomic(v.vmsdPath(), []byte(b.String()))
}

// treeOrder returns the snapshots depth first, children by uid, with their levels and the index
// of each among the snapshots of its level (what the older snapshot.remove syntax addresses).
func (f *vmsdFile) treeOrder() (order []vmsdSnap, levels []int, indexes []int) {
	children := map[string][]vmsdSnap{}
	for _, s := range f.Snaps {
		children[s.Parent] = append(children[s.Parent], s)
	}
	for _, c := range children {
		sort.Slice(c, func(i, j int) bool { return atoi(c[i].UID) < atoi(c[j].UID) })
	}
	perLevel := map[int]int{}
	var walk func(parent string, level int)
	walk = func(parent string, level int) {
		for _, s := range children[parent] {
			order = append(order, s)
			levels = append(levels, level)
			indexes = append(indexes, perLevel[level])
			perLevel[level]++
			walk(s.UID, level+1)
		}
	}
	walk("", 0)
	return order, levels, indexes
}

func (f *vmsdFile) find(uid string) int {
	for i, s := range f.Snaps {
		if s.UID == uid {
			return i
		}
	}
	return -1
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
