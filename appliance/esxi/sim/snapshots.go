package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// createSnapshot freezes every snapshot-able disk of a VM: a new delta on top of each disk's
// chain, the .vmx pointed at it, the tree entry in the .vmsd. Independent disks and physical RDMs
// are left out, as ESXi leaves them out.
func (s *session) createSnapshot(vmid, name, desc string, memory bool) error {
	v, err := s.vm(vmid)
	if err != nil {
		return err
	}
	vmsd, err := v.readVMSD()
	if err != nil {
		return err
	}
	vmDS, err := s.datastoreOf(v.vmx)
	if err != nil {
		return err
	}
	uid := strconv.Itoa(vmsd.LastUID + 1)
	snap := vmsdSnap{UID: uid, Parent: vmsd.Current, Name: name, Description: desc, Created: s.h.now().UTC().Truncate(1e9)}
	for _, d := range v.conf.Disks() {
		if d.Independent() {
			continue
		}
		layers, err := s.chainOf(v, d)
		if err != nil {
			return err
		}
		base := layers[len(layers)-1]
		if base.d.CreateType == "vmfsPassthroughRawDeviceMap" {
			continue
		}
		newDesc, err := s.addDelta(v, vmDS, layers)
		if err != nil {
			return fmt.Errorf("snapshot VM %s disk %s: %w", vmid, d.Device, err)
		}
		snap.Disks = append(snap.Disks, [2]string{d.Device, d.FileName})
		if err := setVMXValue(v.vmx, d.Device+".fileName", newDesc); err != nil {
			return err
		}
	}
	state := "powered off"
	if s.st.VMs[vmid].Power == "on" {
		state = "powered on"
	}
	if s.st.VMs[vmid].SnapStates == nil {
		s.st.VMs[vmid].SnapStates = map[string]string{}
	}
	s.st.VMs[vmid].SnapStates[uid] = state
	vmsn := "vmx snapshot of " + v.hostVMX + "\n"
	if memory {
		vmsn += "memory image included\n"
	}
	if err := os.WriteFile(filepath.Join(v.dir, v.stem()+"-Snapshot"+uid+".vmsn"), []byte(vmsn), 0o644); err != nil {
		return fmt.Errorf("snapshot VM %s: %w", vmid, err)
	}
	vmsd.Snaps = append(vmsd.Snaps, snap)
	vmsd.Current, vmsd.LastUID = uid, vmsd.LastUID+1
	if err := v.writeVMSD(vmsd); err != nil {
		return err
	}
	return s.event("snapshot-create", "vm", vmid, "id", uid, "name", name)
}

// addDelta writes NAME-00000N.vmdk (named after the base disk, in the VM's folder) over the top of
// a chain and returns its file name for the .vmx.
func (s *session) addDelta(v *simVM, vmDS *datastoreState, layers []layer) (string, error) {
	top, base := layers[0], layers[len(layers)-1]
	stem := strings.TrimSuffix(filepath.Base(base.desc), ".vmdk")
	var name string
	for k := 1; ; k++ {
		name = fmt.Sprintf("%s-%06d.vmdk", stem, k)
		if !exists(filepath.Join(v.dir, name)) {
			break
		}
	}
	seSparse := vmDS.Type == "VMFS-6"
	data := strings.TrimSuffix(name, ".vmdk") + "-delta.vmdk"
	if seSparse {
		data = strings.TrimSuffix(name, ".vmdk") + "-sesparse.vmdk"
	}
	// VMFS-6 hosts write the parent as an absolute path through the datastore UUID (see the
	// reference); others a bare name when the parent sits in the same folder.
	hint := filepath.Base(top.desc)
	if seSparse || !sameFile(filepath.Dir(top.desc), v.dir) {
		hp, err := s.uuidPath(top.desc)
		if err != nil {
			return "", err
		}
		hint = hp
	}
	size := top.d.Size()
	f, err := os.OpenFile(filepath.Join(v.dir, data), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	cid := randomHex(4)
	text := deltaDescriptor(seSparse, cid, fmt.Sprintf("%08x", top.d.CID), hint, size/512, data, randomHex(12)+cid)
	if err := os.WriteFile(filepath.Join(v.dir, name), []byte(text), 0o644); err != nil {
		return "", err
	}
	return name, nil
}

// uuidPath is a local file's host path through its datastore's UUID folder.
func (s *session) uuidPath(local string) (string, error) {
	d, err := s.datastoreOf(local)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(s.h.Root, local)
	if err != nil {
		return "", err
	}
	_, rest, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return VMFSPrefix + d.UUID + "/" + rest, nil
}

// removeSnapshot deletes one snapshot: for each disk it froze, the delta above the frozen file is
// merged into it and dropped, and whatever pointed at that delta (the .vmx, the child snapshot,
// the descriptor above) points at the frozen file instead. Data flows into the parent, as ESXi
// consolidates.
func (s *session) removeSnapshot(vmid, uid string) error {
	v, err := s.vm(vmid) // fresh: an earlier removal may have repointed the .vmx
	if err != nil {
		return err
	}
	vmsd, err := v.readVMSD()
	if err != nil {
		return err
	}
	i := vmsd.find(uid)
	if i < 0 {
		return &simFault{typ: "vim.fault.NotFound", msg: "The object or item referred to could not be found."}
	}
	snap := vmsd.Snaps[i]
	child := -1
	for j, c := range vmsd.Snaps {
		if c.Parent == uid {
			if child >= 0 {
				return fmt.Errorf("remove snapshot %s of VM %s: it has several children; the simulator consolidates linear chains only", uid, v.id)
			}
			child = j
		}
	}
	for _, nd := range snap.Disks {
		if err := s.consolidate(v, vmsd, uid, child, nd[0], nd[1]); err != nil {
			return err
		}
	}
	if child >= 0 {
		vmsd.Snaps[child].Parent = snap.Parent
	}
	if vmsd.Current == uid {
		vmsd.Current = snap.Parent
	}
	vmsd.Snaps = append(vmsd.Snaps[:i], vmsd.Snaps[i+1:]...)
	if err := v.writeVMSD(vmsd); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(v.dir, v.stem()+"-Snapshot"+uid+".vmsn"))
	delete(s.st.VMs[v.id].SnapStates, uid)
	return s.event("snapshot-remove", "vm", v.id, "id", uid, "name", snap.Name)
}

// consolidate removes snapshot uid from disk node: the delta above frozenName (the file the
// snapshot froze) is merged into it and dropped, and what pointed at the delta (the descriptor
// above, or the .vmx; the child snapshot's record) points at frozenName instead.
func (s *session) consolidate(v *simVM, vmsd *vmsdFile, uid string, child int, node, frozenName string) error {
	frozen, err := s.h.resolveFile(v.dir, frozenName)
	if err != nil {
		return err
	}
	d, err := v.findDisk(node)
	if err != nil {
		return err
	}
	layers, err := s.chainOf(v, d)
	if err != nil {
		return err
	}
	k := -1 // layers[k] is the delta right above the frozen file
	for j := 1; j < len(layers); j++ {
		if sameFile(layers[j].desc, frozen) {
			k = j - 1
		}
	}
	if k < 0 {
		return fmt.Errorf("remove snapshot %s of VM %s: %s is not in the chain of %s", uid, v.id, frozenName, node)
	}
	if err := mergeInto(layers[k+1], layers[k]); err != nil {
		return fmt.Errorf("remove snapshot %s of VM %s: %w", uid, v.id, err)
	}
	if k > 0 {
		if err := s.relink(layers[k-1].desc, layers[k+1]); err != nil {
			return err
		}
	} else if err := setVMXValue(v.vmx, node+".fileName", frozenName); err != nil {
		return err
	}
	if child >= 0 {
		for j, cd := range vmsd.Snaps[child].Disks {
			if cd[0] == node {
				vmsd.Snaps[child].Disks[j][1] = frozenName
			}
		}
	}
	if err := os.Remove(layers[k].data); err != nil {
		return err
	}
	if err := os.Remove(layers[k].desc); err != nil {
		return err
	}
	return nil
}

// mergeInto copies the grains a delta holds into its parent's extent.
func mergeInto(parent, delta layer) error {
	dst, err := os.OpenFile(parent.data, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("consolidate %s: %w", delta.desc, err)
	}
	defer dst.Close()
	src, err := os.Open(delta.data)
	if err != nil {
		return fmt.Errorf("consolidate %s: %w", delta.desc, err)
	}
	defer src.Close()
	if err := copyExtents(dst, src, delta.d.Size()); err != nil {
		return fmt.Errorf("consolidate %s into %s: %w", delta.desc, parent.desc, err)
	}
	return dst.Sync()
}

// relink points a delta descriptor at a new parent (hint and parentCID). The hint stays absolute
// (through the datastore UUID) when it was, or when the parent lives in another folder.
func (s *session) relink(desc string, parent layer) error {
	b, err := os.ReadFile(desc)
	if err != nil {
		return fmt.Errorf("relink %s: %w", desc, err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "parentFileNameHint="):
			old := strings.Trim(strings.TrimSpace(strings.TrimPrefix(l, "parentFileNameHint=")), `"`)
			hint := filepath.Base(parent.desc)
			if strings.HasPrefix(old, "/") || !sameFile(filepath.Dir(parent.desc), filepath.Dir(desc)) {
				if hint, err = s.uuidPath(parent.desc); err != nil {
					return fmt.Errorf("relink %s: %w", desc, err)
				}
			}
			lines[i] = `parentFileNameHint="` + hint + "\"\n"
		case strings.HasPrefix(l, "parentCID="):
			lines[i] = fmt.Sprintf("parentCID=%08x\n", parent.d.CID)
		}
	}
	return writeFileAtomic(desc, []byte(strings.Join(lines, "")))
}

// snapState is a snapshot's power state for snapshot.get.
func (s *session) snapState(vmid, uid string) string {
	if st := s.st.VMs[vmid].SnapStates[uid]; st != "" {
		return st
	}
	return "powered off"
}
