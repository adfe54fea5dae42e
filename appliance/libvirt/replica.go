package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/transfer/nbd"
	"github.com/snapferry/snapferry/transfer/replica"
)

// ReplicaPush sends one replica set as one update: the CLI's transfer/replica.Push over its SSH
// session, with onDisk as its Options.DiskDone.
type ReplicaPush func(ctx context.Context, set string, files []replica.File, onDisk func(replica.DiskReport)) (replica.Stats, error)

// ReplicaOptions tune the replica of libvirt domains. JobID, Target, FarRoot, StateDir and
// LockDir are required.
type ReplicaOptions struct {
	JobID string
	// Target is the replica root (ssh://host/path) as the user gave it: with the domain's set
	// it names the replica's own checkpoint chain and its record, so replicas to two targets
	// and backups to any repository never steal each other's changes.
	Target string
	// FarRoot is the far side's root folder as its serve announced it: the mirror's domain XML
	// names its disks below it.
	FarRoot string
	// StateDir keeps one record per replica (target and domain): the checkpoint and the far
	// disks' marks its last complete update left.
	StateDir     string
	ExcludeDisks []string
	Quiesce      bool
	ScratchDir   string // QEMU's scratch files, qemu-nbd's sockets and the staged XML
	QemuNBD      string
	LockDir      string
	LockWait     time.Duration
	Log          func(msg string)
}

// MirrorSuffix ends the name of a mirror's domain: it can be defined beside the original.
const MirrorSuffix = "-replica"

// Replica updates the mirror of each domain in turn; one that fails does not stop the others.
func (d *Driver) Replica(ctx context.Context, vms []appliance.VM, push ReplicaPush, o ReplicaOptions) []vmjob.ReplicaResult {
	out := make([]vmjob.ReplicaResult, 0, len(vms))
	for _, vm := range vms {
		if ctx.Err() != nil {
			out = append(out, vmjob.ReplicaResult{VM: vm, Set: vm.Name, Err: fmt.Errorf("replicate domain %s: %w", vm.Name, ctx.Err())})
			continue
		}
		out = append(out, d.ReplicaVM(ctx, vm, push, o))
	}
	return out
}

// ReplicaVM keeps a ready-to-run mirror of one domain in the folder named like it on the far
// side: each disk as a sparse raw file, and the domain XML rewritten for the mirror. A running
// domain is read through a pull-mode backup job of the replica's own checkpoint chain: the first
// run copies the allocated extents, later ones only the blocks the dirty bitmap marks, as long
// as the far disks are still what the last run left (their marks); otherwise, or when the
// bitmap is gone, the disk is compared whole once and a warning says why. A shut-off domain is
// read from its disk files through qemu-nbd, with the checkpoint's persistent bitmap when it can.
func (d *Driver) ReplicaVM(ctx context.Context, vm appliance.VM, push ReplicaPush, o ReplicaOptions) vmjob.ReplicaResult {
	start := time.Now()
	res := vmjob.ReplicaResult{VM: vm, Set: vm.Name, Mode: "hot"}
	r := &domReplica{o: o, push: push, res: &res}
	if err := r.run(ctx, d, vm, start); err != nil {
		res.Err = fmt.Errorf("replicate domain %s: %w", vm.Name, err)
	}
	res.Duration = time.Since(start)
	return res
}

// domReplica is one domain's replica update: a domBackup for reading the domain (its job, its
// checkpoints, its disk plans) whose disks go to the replica push instead of a repository.
type domReplica struct {
	o    ReplicaOptions
	push ReplicaPush
	res  *vmjob.ReplicaResult
	j    *domBackup
	rec  *replicaRecord // the last complete update, nil when none is known
	path string         // the record's file
}

func (r *domReplica) run(ctx context.Context, d *Driver, vm appliance.VM, start time.Time) error {
	if o := r.o; o.JobID == "" || o.Target == "" || o.FarRoot == "" || o.StateDir == "" || o.LockDir == "" {
		return errors.New("libvirt replica: JobID, Target, FarRoot, StateDir and LockDir are required")
	}
	if vm.Name == "" || vm.Name == "." || vm.Name == ".." || strings.ContainsAny(vm.Name, "/\x00") {
		return fmt.Errorf("the domain name %q cannot be the replica's folder on the far side: rename the domain", vm.Name)
	}
	chain := replicaChain(r.o.Target, vm.Name)
	bo := BackupOptions{JobID: r.o.JobID, Chain: chain, ExcludeDisks: r.o.ExcludeDisks, Quiesce: r.o.Quiesce,
		ScratchDir: r.o.ScratchDir, QemuNBD: r.o.QemuNBD, LockDir: r.o.LockDir, LockWait: r.o.LockWait, Log: r.o.Log}
	if err := bo.defaults(); err != nil {
		return err
	}
	scratch := vmjob.Result{VM: vm}
	r.j = &domBackup{d: d, vm: vm, o: &bo, res: &scratch, start: start}
	defer func() {
		r.res.Partial = scratch.Partial
		r.res.Warnings = append(scratch.Warnings, r.res.Warnings...)
	}()
	lock, err := appliance.LockVM(ctx, bo.LockDir, "libvirt:"+vm.ID, bo.LockWait)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := r.j.prepare(); err != nil {
		return err
	}
	r.path = filepath.Join(r.o.StateDir, chain+".json")
	if r.rec, err = loadRecord(r.path); err != nil {
		return err
	}
	if r.rec != nil && r.rec.Domain != vm.ID {
		r.j.warn("the last replica to this folder was of another domain (%s): comparing every disk whole", r.rec.Domain)
		r.rec = nil
	}
	prev := ""
	if r.rec != nil {
		r.j.last = &earlier{what: "the last replica run", chain: "this replica target", sizes: map[string]int64{}}
		for t, dk := range r.rec.Disks {
			r.j.last.sizes[t] = dk.Size
		}
		if strings.HasPrefix(r.rec.Checkpoint, chainPrefix(chain)) {
			prev = r.rec.Checkpoint
		}
	}
	st, _, err := d.l.DomainGetState(r.j.dom, 0)
	if err != nil {
		return fmt.Errorf("domain state: %w", err)
	}
	if running(st) {
		return r.j.pull(ctx, prev, func(ctx context.Context, plans []diskPlan, addr, newCP string) error {
			return r.update(ctx, plans, "tcp", addr, newCP)
		})
	}
	return r.offline(ctx, prev)
}

// offline replicates a shut-off domain from its disk files, each served by qemu-nbd as backups
// do: only the dirty extents when the replica's checkpoint is the newest (its persistent bitmap),
// else compared whole. The disk does not change while the domain is off, so the checkpoint stays
// valid and is recorded again.
func (r *domReplica) offline(ctx context.Context, prev string) error {
	r.res.Mode = "cold"
	plans, err := r.j.plan(prev)
	if err != nil {
		return err
	}
	exists, newest := r.j.offlineCheckpoint(prev)
	if !exists {
		prev = ""
	}
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	socks := make([]string, len(plans))
	for i := range plans {
		sock, stop, err := r.j.serveOffline(ctx, &plans[i], prev, newest)
		if err != nil {
			return err
		}
		stops, socks[i] = append(stops, stop), sock
	}
	return r.updateEach(ctx, plans, "unix", func(i int) string { return socks[i] }, prev)
}

// update pushes the mirror from the backup job's exports at addr and records the result.
func (r *domReplica) update(ctx context.Context, plans []diskPlan, network, addr, newCP string) error {
	return r.updateEach(ctx, plans, network, func(int) string { return addr }, newCP)
}

// updateEach pushes one update of the mirror: each disk read over NBD (plan i at addr(i)),
// then the mirror's XML; after the far side committed it, the record names checkpoint and the
// disks' new marks.
func (r *domReplica) updateEach(ctx context.Context, plans []diskPlan, network string, addr func(int) string, checkpoint string) error {
	set, name := r.res.Set, r.j.vm.Name+MirrorSuffix
	rec := &replicaRecord{Target: r.o.Target, Set: set, Domain: r.j.vm.ID, Checkpoint: checkpoint, Disks: map[string]recordDisk{}}
	paths := map[string]string{}
	var files []replica.File
	for i, p := range plans {
		c, err := nbd.Dial(ctx, network, addr(i), nbd.Options{Export: p.exportName, MetaContexts: exportContexts(p)})
		if err != nil {
			return fmt.Errorf("disk %s: %w", p.spec.Target, err)
		}
		defer c.Close()
		f := replica.File{Name: diskFileName(r.j.vm.Name, p.spec.Target, "raw"), Disk: true, Blocks: newWholeSource(ctx, c, 0)}
		if c.Context(nbd.ContextAllocation) {
			f.Blocks = newFullSource(ctx, c, 0)
		}
		last, had := r.recorded(p.spec.Target)
		switch {
		case p.incremental && had && c.Context(nbd.DirtyBitmapContext(p.bitmap)):
			f.Changed, f.Base = newDirtySource(ctx, c, 0, nbd.DirtyBitmapContext(p.bitmap), false), last.Mark
		case p.incremental:
			r.j.warn("disk %s compared whole: the export has no dirty bitmap %s", p.spec.Target, p.bitmap)
		case p.why != "":
			r.j.warn("disk %s compared whole: %s", p.spec.Target, p.why)
		}
		files = append(files, f)
		paths[p.spec.Target] = path.Join(r.o.FarRoot, set, f.Name)
		rec.Disks[p.spec.Target] = recordDisk{File: f.Name, Size: c.Size()}
	}
	xmlFile, err := r.stageXML(name, paths)
	if err != nil {
		return err
	}
	defer os.Remove(xmlFile)
	files = append(files, replica.File{Name: name + ".xml", Source: xmlFile})
	target := map[string]string{} // disk file -> target
	for t, dk := range rec.Disks {
		target[dk.File] = t
	}
	r.j.o.logf("domain %s: pushing %d disk(s) to replica %q", r.j.vm.Name, len(plans), set)
	st, err := r.push(ctx, set, files, func(dr replica.DiskReport) {
		t := target[dr.Name]
		dk := rec.Disks[t]
		dk.Mark = dr.Mark
		rec.Disks[t] = dk
		if dr.Why != "" {
			r.j.warn("disk %s compared whole: %s", t, dr.Why)
		} else if dr.Incremental {
			r.j.o.logf("domain %s: disk %s: sent the blocks changed since the last replica run", r.j.vm.Name, t)
		}
	})
	r.res.Stats = st
	if err != nil {
		return err
	}
	r.res.Done = true
	rec.Time = time.Now().UTC()
	if err := saveRecord(r.path, rec); err != nil {
		// The mirror is complete; without the record the next run compares every disk whole.
		r.j.warn("%v", err)
	}
	return nil
}

// exportContexts are the NBD meta contexts to ask an export for: allocation, and the dirty
// bitmap of an incremental plan.
func exportContexts(p diskPlan) []string {
	if p.incremental && p.bitmap != "" {
		return []string{nbd.ContextAllocation, nbd.DirtyBitmapContext(p.bitmap)}
	}
	return []string{nbd.ContextAllocation}
}

func (r *domReplica) recorded(target string) (recordDisk, bool) {
	if r.rec == nil {
		return recordDisk{}, false
	}
	dk, ok := r.rec.Disks[target]
	return dk, ok
}

// stageXML writes the mirror's domain XML into the scratch folder: the domain's persistent
// definition rewritten as restore rewrites it for a new name (disks at the mirror's raw files,
// disks not mirrored dropped), with a UUID and MAC addresses derived from the source domain and
// the mirror's name, so every run writes the same identity and a mirror defined on the far side
// can be redefined from a newer run.
func (r *domReplica) stageXML(name string, paths map[string]string) (string, error) {
	doc, err := rewriteForRestore(r.j.xml, name, paths, "raw", false)
	if err != nil {
		return "", err
	}
	if doc, err = stableIdentity(doc, r.j.vm.ID+"\x00"+name); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(r.j.o.ScratchDir, "snapferry-replica-*.xml")
	if err != nil {
		return "", fmt.Errorf("stage the mirror's XML: %w", err)
	}
	_, err = f.WriteString(doc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("stage the mirror's XML: %w", err)
	}
	return f.Name(), nil
}

// stableIdentity sets a domain XML's UUID and its interfaces' MAC addresses to values derived
// from seed, and drops its UEFI variables file.
func stableIdentity(doc, seed string) (string, error) {
	dom, err := parseXML(doc)
	if err != nil {
		return "", fmt.Errorf("mirror XML: %w", err)
	}
	sum := sha256.Sum256([]byte("snapferry replica uuid\x00" + seed))
	var u golibvirt.UUID
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x40 // a random (version 4) UUID, variant 10
	u[8] = u[8]&0x3f | 0x80
	dom.ensure("uuid").setText(formatUUID(u))
	// The UEFI variables file belongs to the original (the mirror does not copy it); without
	// <nvram> libvirt makes the mirror its own from the firmware's template.
	if osEl := dom.child("os"); osEl != nil {
		osEl.remove(func(c *xnode) bool { return c.name == "nvram" })
	}
	if devices := dom.child("devices"); devices != nil {
		for i, ifc := range devices.children("interface") {
			m := sha256.Sum256([]byte(fmt.Sprintf("snapferry replica mac %d\x00%s", i, seed)))
			ifc.ensure("mac").setAttr("address", fmt.Sprintf("52:54:00:%02x:%02x:%02x", m[0], m[1], m[2]))
		}
	}
	return dom.String(), nil
}

// replicaChain names the checkpoint chain of the replica of set at target: "r" and 11 hex
// digits, which no repository's chain (hex only) can equal.
func replicaChain(target, set string) string {
	sum := sha256.Sum256([]byte(target + "\x00" + set))
	return "r" + hex.EncodeToString(sum[:])[:11]
}
