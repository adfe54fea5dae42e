package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/nbd"
)

// Backup backs up each domain in turn; one that fails does not stop the others (the results
// summarize as vmjob.Summarize says, like ESXi VM backups).
func (d *Driver) Backup(ctx context.Context, r vmjob.Repo, vms []appliance.VM, o BackupOptions) []vmjob.Result {
	out := make([]vmjob.Result, 0, len(vms))
	for _, vm := range vms {
		if ctx.Err() != nil {
			out = append(out, vmjob.Result{VM: vm, Err: fmt.Errorf("back up domain %s: %w", vm.Name, ctx.Err())})
			continue
		}
		out = append(out, d.BackupVM(ctx, r, vm, o))
	}
	return out
}

// BackupVM backs up one domain and commits one repository snapshot of kind "vm" holding its
// disks and its domain XML (domain.xml).
func (d *Driver) BackupVM(ctx context.Context, r vmjob.Repo, vm appliance.VM, o BackupOptions) vmjob.Result {
	start := time.Now()
	res := vmjob.Result{VM: vm}
	if err := o.defaults(); err != nil {
		res.Err = err
		return res
	}
	j := &domBackup{d: d, r: r, vm: vm, o: &o, res: &res, start: start}
	if err := j.run(ctx); err != nil {
		res.Err = fmt.Errorf("back up domain %s: %w", vm.Name, err)
	}
	res.Duration = time.Since(start)
	return res
}

// domBackup is one domain backup in progress.
type domBackup struct {
	d     *Driver
	r     vmjob.Repo
	vm    appliance.VM
	o     *BackupOptions
	res   *vmjob.Result
	start time.Time
	dom   golibvirt.Domain
	xml   string // the persistent definition, stored for restore
	disks []diskSpec
	// leftOut are the targets of disks not backed up (excluded, or not local): the backup job
	// and the checkpoint leave them out too.
	leftOut []string
	parent  *repo.SnapshotInfo
	last    *earlier // the previous run when it is not a repository snapshot (replicas)
	sn      *repo.Snapshot
	stats   repo.Stats
}

func (j *domBackup) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	j.res.Warnings = append(j.res.Warnings, msg)
	j.o.logf("domain %s: %s", j.vm.Name, msg)
}

func (j *domBackup) run(ctx context.Context) error {
	lock, err := appliance.LockVM(ctx, j.o.LockDir, "libvirt:"+j.vm.ID, j.o.LockWait)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := j.prepare(); err != nil {
		return err
	}
	if p, err := j.r.FindSnapshot(ctx, "latest", repo.SnapshotFilter{Host: j.o.Host, Source: j.vm.Name, Kind: repo.SnapshotVM}); err == nil {
		j.parent = &p
	}
	st, _, err := j.d.l.DomainGetState(j.dom, 0)
	if err != nil {
		return fmt.Errorf("domain state: %w", err)
	}
	j.sn = &repo.Snapshot{
		Time: j.start, Host: j.o.Host, Kind: repo.SnapshotVM, Source: j.vm.Name, Tags: j.o.Tags, JobID: j.o.JobID,
		VM: &repo.VMInfo{Name: j.vm.Name, ID: j.vm.ID, Hypervisor: "libvirt", Mode: "hot"},
	}
	if running(st) {
		return j.online(ctx)
	}
	j.sn.VM.Mode = "cold"
	return j.offline(ctx)
}

// running tells the domain states in which QEMU runs (and a backup job can start).
func running(st int32) bool {
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainRunning, golibvirt.DomainPaused, golibvirt.DomainBlocked, golibvirt.DomainPmsuspended:
		return true
	}
	return false
}

// prepare finds the domain, reads its definition and picks the disks to read (j.disks; the
// others in j.leftOut, skipped ones with a warning). The caller holds the domain's lock.
func (j *domBackup) prepare() error {
	var err error
	if j.dom, err = j.d.domain(j.vm.ID); err != nil {
		return err
	}
	live, err := j.d.l.DomainGetXMLDesc(j.dom, 0)
	if err != nil {
		return fmt.Errorf("read domain XML: %w", err)
	}
	j.xml = live
	if inactive, err := j.d.l.DomainGetXMLDesc(j.dom, golibvirt.DomainXMLInactive); err == nil {
		j.xml = inactive
	}
	_, disks, skipped, err := domainDisks(live)
	if err != nil {
		return err
	}
	for _, t := range skipped {
		j.warn("disk %s skipped: not a local file or block device", t)
		j.res.Partial = true
	}
	j.leftOut = skipped
	for _, s := range disks {
		if appliance.DiskExcluded(appliance.Disk{Name: s.Target, FileName: s.Path}, j.o.ExcludeDisks) {
			j.o.logf("domain %s: disk %s excluded", j.vm.Name, s.Target)
			j.leftOut = append(j.leftOut, s.Target)
			continue
		}
		j.disks = append(j.disks, s)
	}
	if len(j.disks) == 0 {
		return errors.New("no disk to back up")
	}
	return nil
}

// prevCheckpoint is the checkpoint of this chain the last snapshot recorded, "" for none.
func (j *domBackup) prevCheckpoint() string {
	if j.parent == nil || j.parent.Snapshot.VM == nil {
		return ""
	}
	cp := j.parent.Snapshot.VM.Checkpoint
	if !strings.HasPrefix(cp, chainPrefix(j.o.Chain)) {
		return ""
	}
	return cp
}

func (j *domBackup) parentDisk(target string) *repo.Disk {
	if j.parent == nil {
		return nil
	}
	for i := range j.parent.Snapshot.Disks {
		if j.parent.Snapshot.Disks[i].Name == target {
			return &j.parent.Snapshot.Disks[i]
		}
	}
	return nil
}

// diskPlan is how one disk is read: whole (full, with why when a parent exists) or only its
// dirty extents since prev.
type diskPlan struct {
	spec        diskSpec
	size        int64
	incremental bool
	why         string // why a disk with a parent is read whole
	exportName  string
	bitmap      string
}

// earlier is what the previous run of a checkpoint chain left, as plan needs it: the
// repository's last snapshot for a backup, the replica's record for a replica.
type earlier struct {
	what  string           // "the last snapshot (1a2b3c4d)", for messages
	chain string           // "this repository", for messages
	sizes map[string]int64 // disk target -> its size then
}

// lastRun is the earlier run plan compares with: j.last when set (replicas), else the
// repository's last snapshot; nil when there was none.
func (j *domBackup) lastRun() *earlier {
	if j.last != nil || j.parent == nil {
		return j.last
	}
	e := &earlier{what: fmt.Sprintf("the last snapshot (%s)", j.parent.ID.Short()), chain: "this repository", sizes: map[string]int64{}}
	for _, d := range j.parent.Snapshot.Disks {
		e.sizes[d.Name] = d.Size
	}
	return e
}

// plan decides per disk whether the checkpoint prev still covers it.
func (j *domBackup) plan(prev string) ([]diskPlan, error) {
	last := j.lastRun()
	var cpDisks map[string]uint64
	exists := false
	if prev != "" {
		var err error
		if cpDisks, exists, err = j.d.checkpointDisks(j.dom, prev); err != nil {
			return nil, err
		}
	}
	out := make([]diskPlan, 0, len(j.disks))
	for _, s := range j.disks {
		_, capacity, _, err := j.d.l.DomainGetBlockInfo(j.dom, s.Target, 0)
		if err != nil {
			return nil, fmt.Errorf("size of disk %s: %w", s.Target, err)
		}
		p := diskPlan{spec: s, size: int64(capacity)}
		lastSize, had := int64(0), false
		if last != nil {
			lastSize, had = last.sizes[s.Target]
		}
		_, hasBitmap := cpDisks[s.Target]
		switch {
		case last == nil:
		case s.Format != "qcow2":
			p.why = fmt.Sprintf("disk %s is %s: QEMU keeps dirty bitmaps only in qcow2 disks", s.Target, s.Format)
		case prev == "":
			p.why = fmt.Sprintf("%s has no checkpoint of %s", last.what, last.chain)
		case !exists:
			p.why = fmt.Sprintf("checkpoint %s is gone (deleted, or the domain was redefined), so its dirty bitmap is lost", prev)
		case !hasBitmap:
			p.why = fmt.Sprintf("checkpoint %s has no bitmap for disk %s", prev, s.Target)
		case !had:
			p.why = fmt.Sprintf("%s has no disk %s", last.what, s.Target)
		case lastSize != p.size:
			p.why = fmt.Sprintf("disk %s was resized from %d to %d bytes", s.Target, lastSize, p.size)
		default:
			p.incremental = true
		}
		out = append(out, p)
	}
	return out, nil
}

// online backs up a running domain through a pull-mode backup job.
func (j *domBackup) online(ctx context.Context) error {
	return j.pull(ctx, j.prevCheckpoint(), func(ctx context.Context, plans []diskPlan, addr, newCP string) error {
		for _, p := range plans {
			if err := j.readDisk(ctx, p, "tcp", addr); err != nil {
				return err
			}
		}
		j.sn.VM.Checkpoint = newCP
		return j.commit(ctx)
	})
}

// pull runs a pull-mode backup job of the running domain: QEMU exports each disk as it is at
// the start over NBD on 127.0.0.1 (incremental since the chain's checkpoint prev where it still
// covers the disk) and creates the chain's new checkpoint. consume reads the exports at addr
// and commits what it made of them; newCP is the new checkpoint ("" when no disk keeps a
// bitmap). After a commit prev is deleted; after a failure the new checkpoint is, so prev still
// covers every change.
func (j *domBackup) pull(ctx context.Context, prev string, consume func(ctx context.Context, plans []diskPlan, addr, newCP string) error) error {
	j.thawLeftover(ctx)
	if err := j.clearLeftovers(prev); err != nil {
		return err
	}
	plans, err := j.plan(prev)
	if err != nil {
		return err
	}
	newCP := checkpointName(j.o.Chain, j.o.JobID)
	cpXML := j.checkpointXML(newCP, plans)
	port, err := freePort()
	if err != nil {
		return err
	}
	bx, scratch := j.backupXML(port, prev, plans)
	var cpOpt golibvirt.OptString
	if cpXML != "" {
		cpOpt = golibvirt.OptString{cpXML}
	}
	// The guest is frozen only while the job starts: QEMU keeps that instant for the reads.
	thaw := j.freezeGuest(ctx)
	defer thaw()
	err = j.d.l.DomainBackupBegin(j.dom, bx, cpOpt, 0)
	thaw()
	if err != nil {
		return fmt.Errorf("start the libvirt backup job: %w", err)
	}
	committed := false
	defer func() {
		j.endJob(scratch)
		if !committed && cpXML != "" {
			// The new checkpoint's changes merge back into prev's, which stays valid.
			if err := j.d.deleteCheckpoint(j.dom, newCP); err != nil {
				j.o.logf("domain %s: %v", j.vm.Name, err)
			}
		}
	}()
	if err := j.exports(plans); err != nil {
		return err
	}
	made := newCP
	if cpXML == "" {
		made = ""
	}
	if err := consume(ctx, plans, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), made); err != nil {
		return err
	}
	committed = true
	if prev != "" && cpXML != "" {
		j.endJob(scratch) // a checkpoint cannot be deleted while the job uses it
		if err := j.d.deleteCheckpoint(j.dom, prev); err != nil {
			j.warn("%v", err)
		}
	}
	return nil
}

// clearLeftovers removes what a killed earlier run of this chain left: a backup job whose
// scratch files are ours, and checkpoints of the chain other than prev.
func (j *domBackup) clearLeftovers(prev string) error {
	if x, err := j.d.l.DomainBackupGetXMLDesc(j.dom, 0); err == nil {
		if strings.Contains(x, scratchPrefix) {
			j.warn("ended a backup job an earlier snapferry run left")
			if err := j.d.abortBackupJob(j.dom); err != nil {
				return fmt.Errorf("end the leftover backup job: %w", err)
			}
		} else {
			return errors.New("the domain has a backup job that is not snapferry's; wait for it or end it (virsh domjobabort)")
		}
	}
	cps, err := j.d.chainCheckpoints(j.dom, j.o.Chain)
	if err != nil {
		return err
	}
	for _, cp := range cps {
		if cp == prev {
			continue
		}
		j.o.logf("domain %s: removing checkpoint %s an earlier run left", j.vm.Name, cp)
		if err := j.d.deleteCheckpoint(j.dom, cp); err != nil {
			return err
		}
	}
	return nil
}

// scratchPrefix starts the names of our scratch files, by which a leftover job is known.
const scratchPrefix = "snapferry-scratch-"

func (j *domBackup) checkpointXML(name string, plans []diskPlan) string {
	disks := el("disks", nil)
	any := false
	for _, p := range plans {
		mode := "no"
		if p.spec.Format == "qcow2" {
			mode, any = "bitmap", true
		}
		disks.kids = append(disks.kids, el("disk", []string{"name", p.spec.Target, "checkpoint", mode}))
	}
	if !any {
		return ""
	}
	// Disks left out of the backup are left out of the checkpoint too.
	for _, t := range j.leftOut {
		disks.kids = append(disks.kids, el("disk", []string{"name", t, "checkpoint", "no"}))
	}
	n, desc := el("name", nil), el("description", nil)
	n.setText(name)
	desc.setText("snapferry backup " + j.o.JobID)
	return el("domaincheckpoint", nil, n, desc, disks).String()
}

func (j *domBackup) backupXML(port int, prev string, plans []diskPlan) (string, []string) {
	disks := el("disks", nil)
	var scratch []string
	for _, p := range plans {
		sf := filepath.Join(j.o.ScratchDir, scratchPrefix+j.o.JobID+"-"+p.spec.Target+".qcow2")
		scratch = append(scratch, sf)
		attrs := []string{"name", p.spec.Target, "backup", "yes", "type", "file", "backupmode", "full"}
		if p.incremental {
			attrs = append(attrs[:6], "backupmode", "incremental", "incremental", prev)
		}
		disks.kids = append(disks.kids, el("disk", attrs, el("scratch", []string{"file", sf})))
	}
	for _, t := range j.leftOut {
		disks.kids = append(disks.kids, el("disk", []string{"name", t, "backup", "no"}))
	}
	server := el("server", []string{"transport", "tcp", "name", "127.0.0.1", "port", strconv.Itoa(port)})
	return el("domainbackup", []string{"mode", "pull"}, server, disks).String(), scratch
}

// exports reads the running job's export and bitmap names.
func (j *domBackup) exports(plans []diskPlan) error {
	doc, err := j.d.l.DomainBackupGetXMLDesc(j.dom, 0)
	if err != nil {
		return fmt.Errorf("read the backup job: %w", err)
	}
	x, err := parseXML(doc)
	if err != nil {
		return fmt.Errorf("the backup job: %w", err)
	}
	if x.child("disks") == nil {
		return errors.New("the backup job exports no disks")
	}
	for i := range plans {
		for _, dk := range x.child("disks").children("disk") {
			if dk.attr("name") == plans[i].spec.Target {
				plans[i].exportName, plans[i].bitmap = dk.attr("exportname"), dk.attr("exportbitmap")
			}
		}
		if plans[i].exportName == "" {
			plans[i].exportName = plans[i].spec.Target
		}
		if plans[i].incremental && plans[i].bitmap == "" {
			return fmt.Errorf("the backup job exports no dirty bitmap for disk %s", plans[i].spec.Target)
		}
	}
	return nil
}

// endJob ends the backup job (pull-mode jobs run until told) and removes the scratch files.
func (j *domBackup) endJob(scratch []string) {
	if _, err := j.d.l.DomainBackupGetXMLDesc(j.dom, 0); err == nil {
		if err := j.d.abortBackupJob(j.dom); err != nil {
			j.o.logf("domain %s: end backup job: %v", j.vm.Name, err)
		}
	}
	for _, f := range scratch {
		_ = os.Remove(f)
	}
}

// readDisk stores one disk read over NBD.
func (j *domBackup) readDisk(ctx context.Context, p diskPlan, network, addr string) error {
	contexts := []string{nbd.ContextAllocation}
	if p.incremental {
		contexts = append(contexts, nbd.DirtyBitmapContext(p.bitmap))
	}
	c, err := nbd.Dial(ctx, network, addr, nbd.Options{Export: p.exportName, MetaContexts: contexts})
	if err != nil {
		return fmt.Errorf("disk %s: %w", p.spec.Target, err)
	}
	defer c.Close()
	var src disk.Source
	var parent *repo.Disk
	switch {
	case p.incremental:
		if !c.Context(contexts[1]) {
			return fmt.Errorf("disk %s: the NBD export has no dirty bitmap %s", p.spec.Target, p.bitmap)
		}
		parent = j.parentDisk(p.spec.Target)
		src = newDirtySource(ctx, c, j.r.BlockSize(), contexts[1], parent != nil)
		j.o.logf("domain %s: disk %s: reading the extents changed since the last backup", j.vm.Name, p.spec.Target)
	case c.Context(nbd.ContextAllocation):
		src = newFullSource(ctx, c, j.r.BlockSize())
	default:
		src = newWholeSource(ctx, c, j.r.BlockSize())
	}
	if !p.incremental && p.why != "" {
		j.warn("disk %s read whole: %s", p.spec.Target, p.why)
	}
	rd, st, err := disk.BackupSource(ctx, j.r, src, disk.SourceOptions{
		Name: p.spec.Target, Device: p.spec.Bus + ":" + p.spec.Target, Path: p.spec.Path, Progress: j.o.Progress, Parent: parent,
		PartialBlocks: parent != nil, // only the dirty extents are read (nbd_source.go)
	})
	if err != nil {
		return fmt.Errorf("disk %s: %w", p.spec.Target, err)
	}
	j.sn.Disks = append(j.sn.Disks, rd)
	addStats(&j.stats, st)
	return nil
}

// commit stores the domain XML and commits the snapshot.
func (j *domBackup) commit(ctx context.Context) error {
	before := storedBytes(j.r)
	tree, st, err := saveDomainXML(ctx, j.r, j.xml, j.start)
	if err != nil {
		return err
	}
	addStats(&j.stats, st)
	j.sn.Tree = &tree
	j.sn.Partial = j.res.Partial
	j.sn.Warnings = j.res.Warnings
	if err := j.r.Flush(ctx); err != nil {
		return fmt.Errorf("store data: %w", err)
	}
	j.stats.BytesStored = storedBytes(j.r) - before
	j.sn.Stats = j.stats
	if j.parent != nil {
		j.sn.Parent = &j.parent.ID
	}
	id, err := j.r.SaveSnapshot(ctx, j.sn)
	if err != nil {
		return fmt.Errorf("commit snapshot: %w", err)
	}
	j.res.Snapshot, j.res.Committed, j.res.Stats = id, true, j.stats
	j.o.logf("domain %s: committed snapshot %s", j.vm.Name, id.Short())
	return nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1 for QEMU's NBD server.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port for the NBD export: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func storedBytes(r vmjob.Repo) int64 {
	if c, ok := r.(interface{ Stats() repo.RunStats }); ok {
		return c.Stats().BytesStored
	}
	return 0
}

func addStats(a *repo.Stats, b repo.Stats) {
	a.BytesRead += b.BytesRead
	a.BytesAdded += b.BytesAdded
	a.BytesStored += b.BytesStored
	a.BlobsNew += b.BlobsNew
	a.BlobsReused += b.BlobsReused
}
