package libvirt

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// offline backs up a shut-off domain from its disk files, each served read-only by qemu-nbd
// (which follows qcow2 backing chains and reports holes). The disk cannot change while the
// domain is off, so the chain's checkpoint stays valid and is recorded again. When that
// checkpoint is the newest on the domain, its bitmap in the qcow2 file holds every change since
// it, and qemu-nbd exports it (-B): the backup reads only the dirty extents, as a running one
// does. Otherwise, or when qemu-nbd cannot export the bitmap, the disk is read whole.
func (j *domBackup) offline(ctx context.Context) error {
	prev := j.prevCheckpoint()
	plans, err := j.plan(prev)
	if err != nil {
		return err
	}
	exists, newest := j.offlineCheckpoint(prev)
	if exists {
		j.sn.VM.Checkpoint = prev
	}
	for _, p := range plans {
		sock, stop, err := j.serveOffline(ctx, &p, prev, newest)
		if err != nil {
			return err
		}
		err = j.readDisk(ctx, p, "unix", sock)
		stop()
		if err != nil {
			return err
		}
	}
	return j.commit(ctx)
}

// offlineCheckpoint reports whether the chain's checkpoint prev exists on the shut-off domain
// and whether it is the newest (no checkpoint has it as parent): only then does its persistent
// bitmap alone hold every change since it.
func (j *domBackup) offlineCheckpoint(prev string) (exists, newest bool) {
	if prev == "" {
		return false, false
	}
	cp, err := j.d.l.DomainCheckpointLookupByName(j.dom, prev, 0)
	if err != nil {
		return false, false
	}
	kids, _, err := j.d.l.DomainListAllCheckpoints(j.dom, 1, 0)
	newest = err == nil
	for _, k := range kids {
		if parent, err := j.d.l.DomainCheckpointGetParent(k, 0); err == nil && parent.Name == cp.Name {
			newest = false
		}
	}
	return true, newest
}

// serveOffline starts qemu-nbd for one disk of the shut-off domain (export "disk"), exporting
// prev's persistent bitmap when p is incremental and prev is the newest checkpoint; otherwise,
// or when qemu-nbd cannot export the bitmap, p is turned into a whole read with the reason.
func (j *domBackup) serveOffline(ctx context.Context, p *diskPlan, prev string, newest bool) (string, func(), error) {
	var extra []string
	if p.incremental && newest {
		extra, p.bitmap = []string{"--bitmap=" + prev}, prev
	} else if p.incremental {
		p.incremental = false
		p.why = fmt.Sprintf("checkpoint %s has later checkpoints, so its bitmap alone misses changes (an offline backup cannot merge them)", prev)
	}
	sock, stop, err := serveFile(ctx, j.o.QemuNBD, j.o.ScratchDir, p.spec.Path, p.spec.Format, extra...)
	if err != nil && extra != nil {
		p.incremental, p.bitmap = false, ""
		p.why = fmt.Sprintf("qemu-nbd could not export the dirty bitmap %s (%v)", prev, err)
		sock, stop, err = serveFile(ctx, j.o.QemuNBD, j.o.ScratchDir, p.spec.Path, p.spec.Format)
	}
	if err != nil {
		return "", nil, fmt.Errorf("disk %s: %w", p.spec.Target, err)
	}
	j.o.logf("domain %s is shut off: reading disk %s from %s", j.vm.Name, p.spec.Target, p.spec.Path)
	p.exportName = "disk"
	return sock, stop, nil
}

// serveFile starts `qemu-nbd --read-only` for one disk file on a unix socket in a fresh folder
// under dir, and returns the socket and a stop function that ends qemu-nbd and removes the
// folder. qemu-nbd takes a shared lock on the image: a domain started meanwhile is refused
// rather than read half-written.
func serveFile(ctx context.Context, qemuNBD, dir, path, format string, extra ...string) (string, func(), error) {
	tmp, err := os.MkdirTemp(dir, "snapferry-nbd-")
	if err != nil {
		return "", nil, fmt.Errorf("qemu-nbd folder: %w", err)
	}
	sock := filepath.Join(tmp, "sock")
	args := append([]string{"--read-only", "--persistent", "--shared=2", "--format=" + format, "--export-name=disk", "--socket=" + sock}, extra...)
	cmd := exec.Command(qemuNBD, append(args, path)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("start qemu-nbd (apt-get install qemu-utils): %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
		os.RemoveAll(tmp)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		// The socket file appears at bind, before qemu-nbd listens: wait for a connection.
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock, stop, nil
		}
		select {
		case <-exited:
			stop()
			return "", nil, fmt.Errorf("qemu-nbd could not open %s: %s", path, bytes.TrimSpace(stderr.Bytes()))
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		case <-deadline:
			stop()
			return "", nil, fmt.Errorf("qemu-nbd did not start serving %s within 30s", path)
		case <-tick.C:
		}
	}
}
