package vmx

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// VMSDSnapshot is one snapshot entry of a .vmsd file.
type VMSDSnapshot struct {
	UID         string
	Parent      string // parent uid, "" for a root
	Name        string // displayName
	Description string
	Disks       map[string]string // device node ("scsi0:0") -> descriptor file name the snapshot froze
}

// VMSD is a parsed .vmsd: the snapshot tree the host keeps beside the .vmx.
type VMSD struct {
	Current   string // uid of the snapshot the VM runs on top of
	Snapshots []VMSDSnapshot
}

// ParseVMSD parses a .vmsd (same syntax as a .vmx). An empty file means no snapshots.
func ParseVMSD(text string) (*VMSD, error) {
	kv, err := Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse vmsd: %w", err)
	}
	out := &VMSD{Current: kv.Value("snapshot.current")}
	idx := map[int]bool{}
	for _, k := range kv.Keys {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "snapshot") {
			continue
		}
		rest := lk[len("snapshot"):]
		dot := strings.IndexByte(rest, '.')
		if dot <= 0 {
			continue
		}
		if n, err := strconv.Atoi(rest[:dot]); err == nil {
			idx[n] = true
		}
	}
	order := make([]int, 0, len(idx))
	for n := range idx {
		order = append(order, n)
	}
	sort.Ints(order)
	for _, n := range order {
		p := "snapshot" + strconv.Itoa(n) + "."
		s := VMSDSnapshot{
			UID: kv.Value(p + "uid"), Parent: kv.Value(p + "parent"),
			Name: kv.Value(p + "displayName"), Description: kv.Value(p + "description"),
			Disks: map[string]string{},
		}
		if s.UID == "" {
			return nil, fmt.Errorf("parse vmsd: snapshot%d has no uid", n)
		}
		nd, _ := strconv.Atoi(kv.Value(p + "numDisks"))
		for d := 0; d < nd && d < 4096; d++ {
			dp := p + "disk" + strconv.Itoa(d) + "."
			if node := kv.Value(dp + "node"); node != "" {
				s.Disks[node] = kv.Value(dp + "fileName")
			}
		}
		out.Snapshots = append(out.Snapshots, s)
	}
	return out, nil
}
