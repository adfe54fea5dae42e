package libvirt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/nbd"
)

// Instant is a domain booted straight from a backup: each disk a local qcow2 overlay whose
// backing file is an NBD export of the snapshot's disk, served by this process from the
// repository. The guest's writes land in the overlays; libvirt block pulls copy the rest in the
// background, and when they finish the overlays stand alone and the domain is an ordinary local
// one. The exports must be served until then: Wait does that.
type Instant struct {
	Result  RestoreResult
	d       *Driver
	dom     golibvirt.Domain
	srv     *nbd.Server
	stop    context.CancelFunc
	served  chan error
	sockDir string
	lock    *appliance.VMLock
	o       RestoreOptions
}

// BytesServed is how much disk data QEMU has read from the repository so far.
func (in *Instant) BytesServed() int64 { return in.srv.BytesServed() }

// InstantRestore defines and starts the snapshot's domain at once under o.Name (checks as
// Restore: never over a running domain, over a shut-off one only with Overwrite), with qcow2
// overlays in o.DiskDir backed by NBD exports of the snapshot, and starts copying the disks
// into the overlays (block pull). Call Wait to serve the exports until the copy is complete.
func (d *Driver) InstantRestore(ctx context.Context, bs repo.BlobStore, sn *repo.Snapshot, o RestoreOptions) (_ *Instant, err error) {
	if err := o.normalizeInstant(sn); err != nil {
		return nil, err
	}
	in := &Instant{d: d, o: o, served: make(chan error, 1)}
	in.Result.Name = o.Name
	if in.lock, err = appliance.LockVM(ctx, o.LockDir, "name:"+o.Name, o.LockWait); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	doc, err := loadDomainXML(ctx, bs, sn)
	if err != nil {
		return nil, err
	}
	existing, exists, err := d.checkTarget(o.Name, o.Overwrite, true)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DiskDir, 0o755); err != nil {
		return nil, fmt.Errorf("disk folder: %w", err)
	}
	paths, sock, err := in.serve(ctx, bs, sn)
	if err != nil {
		return nil, err
	}
	if err := in.createOverlays(ctx, sn, paths, sock); err != nil {
		return nil, err
	}
	x, err := rewriteForRestore(doc, o.Name, paths, "qcow2", o.Name == sn.VM.Name)
	if err != nil {
		return nil, err
	}
	if x, err = withNBDBacking(x, paths, sock); err != nil {
		return nil, err
	}
	in.Result.XML = x
	if err := in.start(sn, existing, exists); err != nil {
		return nil, err
	}
	o.logf("domain %s runs from the backup; copying its disks into %s", o.Name, o.DiskDir)
	return in, nil
}

// normalizeInstant checks the options of an instant restore and fills the defaults.
func (o *RestoreOptions) normalizeInstant(sn *repo.Snapshot) error {
	if !IsLibvirtSnapshot(sn) {
		return fmt.Errorf("snapshot of %s is not a libvirt domain backup: --instant needs one", sn.Source)
	}
	if o.DiskDir == "" {
		return errors.New("restore --instant: --disk-dir is required (the folder its overlays go into)")
	}
	if o.Pool != "" {
		return errors.New("restore --instant writes its qcow2 overlays into --disk-dir; --pool does not apply (restore into the pool without --instant)")
	}
	if o.Format != "" && o.Format != "qcow2" {
		return fmt.Errorf("restore --instant writes qcow2 overlays; --format=%s does not apply", o.Format)
	}
	o.QemuImg = cmp.Or(o.QemuImg, "qemu-img")
	o.Name = cmp.Or(o.Name, sn.VM.Name)
	return nil
}

// serve checks that no overlay file exists (without Overwrite) and starts serving the
// snapshot's disks over NBD on a unix socket; it returns the overlay paths and the socket.
func (in *Instant) serve(ctx context.Context, bs repo.BlobStore, sn *repo.Snapshot) (map[string]string, string, error) {
	o := in.o
	var err error
	// Socket paths are limited to 107 bytes: a short folder of its own. QEMU may run as another
	// user (libvirt-qemu), so the folder is searchable and the socket connectable by others on
	// the host for as long as the restore runs, like QEMU's own NBD exports on 127.0.0.1.
	if in.sockDir, err = os.MkdirTemp("", "sfnbd"); err != nil {
		return nil, "", err
	}
	if err := os.Chmod(in.sockDir, 0o755); err != nil {
		return nil, "", err
	}
	sock := filepath.Join(in.sockDir, "nbd.sock")
	var exports []nbd.Export
	paths := map[string]string{}
	for _, dk := range sn.Disks {
		r, err := disk.NewReader(context.WithoutCancel(ctx), bs, dk, disk.ReaderOptions{})
		if err != nil {
			return nil, "", fmt.Errorf("disk %s: %w", dk.Name, err)
		}
		exports = append(exports, nbd.Export{Name: dk.Name, Size: dk.Size, Data: r})
		p := filepath.Join(o.DiskDir, diskFileName(o.Name, dk.Name, "qcow2"))
		if _, err := os.Lstat(p); err == nil && !o.Overwrite {
			return nil, "", kept(p, fmt.Sprintf("disk file %s exists: give --overwrite to replace it, or another --name or --disk-dir", p))
		}
		paths[dk.Name] = p
		in.Result.Disks = append(in.Result.Disks, p)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, "", fmt.Errorf("listen for the NBD exports: %w", err)
	}
	_ = os.Chmod(sock, 0o666)
	in.srv = nbd.NewServer(exports...)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in.stop = cancel
	go func() { in.served <- in.srv.Serve(sctx, l) }()
	return paths, sock, nil
}

// createOverlays creates each disk's qcow2 overlay over its NBD export, under a temporary name
// renamed when created.
func (in *Instant) createOverlays(ctx context.Context, sn *repo.Snapshot, paths map[string]string, sock string) error {
	for _, dk := range sn.Disks {
		backing := "nbd+unix:///" + dk.Name + "?socket=" + sock
		out, err := exec.CommandContext(ctx, in.o.QemuImg, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", backing, "-u", paths[dk.Name]+".snapferry-tmp", fmt.Sprint(dk.Size)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("create overlay for disk %s: %v: %s", dk.Name, err, out)
		}
		if err := os.Rename(paths[dk.Name]+".snapferry-tmp", paths[dk.Name]); err != nil {
			return err
		}
	}
	return nil
}

// start defines the domain (after undefining the shut-off one it replaces), starts it and
// starts the block pulls that copy the backup into the overlays.
func (in *Instant) start(sn *repo.Snapshot, existing golibvirt.Domain, exists bool) error {
	d, name := in.d, in.o.Name
	if exists {
		if err := d.l.DomainUndefineFlags(existing, golibvirt.DomainUndefineCheckpointsMetadata|golibvirt.DomainUndefineSnapshotsMetadata|golibvirt.DomainUndefineManagedSave); err != nil {
			return fmt.Errorf("undefine the domain %s being replaced: %w", name, err)
		}
	}
	var err error
	if in.dom, err = d.l.DomainDefineXMLFlags(in.Result.XML, 0); err != nil {
		return fmt.Errorf("define %s: %w", name, err)
	}
	in.Result.Defined, in.Result.UUID = true, formatUUID(in.dom.UUID)
	if err := d.l.DomainCreate(in.dom); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	for _, dk := range sn.Disks {
		if err := d.l.DomainBlockPull(in.dom, dk.Name, 0, 0); err != nil {
			return fmt.Errorf("start copying disk %s into its overlay: %w", dk.Name, err)
		}
	}
	return nil
}

// withNBDBacking gives each restored disk an explicit backing store: the NBD export of the
// same target on sock, raw. libvirt then never probes the overlay's backing string.
func withNBDBacking(doc string, paths map[string]string, sock string) (string, error) {
	dom, err := parseXML(doc)
	if err != nil {
		return "", err
	}
	for _, dk := range dom.child("devices").childrenSafe("disk") {
		t := dk.child("target").attr("dev")
		if paths[t] == "" {
			continue
		}
		dk.remove(func(c *xnode) bool { return c.name == "backingStore" })
		dk.kids = append(dk.kids, el("backingStore", []string{"type", "network"},
			el("format", []string{"type", "raw"}),
			el("source", []string{"protocol", "nbd", "name", t}, el("host", []string{"transport", "unix", "socket", sock}))))
	}
	return dom.String(), nil
}

// Wait serves the exports until every disk's block pull has finished (the domain then no
// longer reads from the repository), or ctx ends, or the domain stops; then it stops serving.
func (in *Instant) Wait(ctx context.Context) error {
	defer in.Close()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := 0
		x, err := in.d.l.DomainGetXMLDesc(in.dom, 0)
		if err != nil {
			return fmt.Errorf("domain %s: %w", in.Result.Name, err)
		}
		_, disks, _, err := domainDisks(x)
		if err != nil {
			return err
		}
		for _, s := range disks {
			found, _, _, _, _, err := in.d.l.DomainGetBlockJobInfo(in.dom, s.Target, 0)
			if err != nil {
				return fmt.Errorf("copy of disk %s: %w", s.Target, err)
			}
			if found != 0 {
				pending++
			}
		}
		if pending == 0 {
			if backed, err := in.stillBacked(); err != nil || backed {
				if err == nil {
					err = fmt.Errorf("the copy of %s ended but a disk still reads from the backup (was its block job cancelled?)", in.Result.Name)
				}
				return err
			}
			in.o.logf("domain %s: disks copied; it no longer needs the backup", in.Result.Name)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped before the disks were copied: domain %s still reads from the backup and will fail without it: %w", in.Result.Name, ctx.Err())
		case err := <-in.served:
			return fmt.Errorf("NBD server stopped: %v", err)
		case <-tick.C:
		}
	}
}

// stillBacked tells whether a disk of the domain still has the NBD backing store.
func (in *Instant) stillBacked() (bool, error) {
	x, err := in.d.l.DomainGetXMLDesc(in.dom, 0)
	if err != nil {
		return false, err
	}
	dom, err := parseXML(x)
	if err != nil {
		return false, err
	}
	for _, dk := range dom.child("devices").childrenSafe("disk") {
		if bs := dk.child("backingStore"); bs != nil && bs.child("source").attr("protocol") == "nbd" {
			return true, nil
		}
	}
	return false, nil
}

// Close stops serving the exports (a domain still reading from them gets I/O errors) and
// releases the name's lock.
func (in *Instant) Close() {
	if in.stop != nil {
		in.stop()
		in.stop = nil
	}
	if in.sockDir != "" {
		os.RemoveAll(in.sockDir)
		in.sockDir = ""
	}
	if in.lock != nil {
		in.lock.Unlock()
		in.lock = nil
	}
}
