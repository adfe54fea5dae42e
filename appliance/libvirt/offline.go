package libvirt

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// offline backs up a shut-off domain from its disk files, each served read-only by qemu-nbd
// (which follows qcow2 backing chains and reports holes). The disk cannot change while the
// domain is off, so the chain's checkpoint stays valid and is recorded again.
func (j *domBackup) offline(ctx context.Context) error {
	prev := j.prevCheckpoint()
	if prev != "" {
		if _, exists, err := j.d.checkpointDisks(j.dom, prev); err == nil && exists {
			j.sn.VM.Checkpoint = prev
		}
	}
	for _, s := range j.disks {
		sock, stop, err := serveFile(ctx, j.o.QemuNBD, j.o.ScratchDir, s.Path, s.Format)
		if err != nil {
			return fmt.Errorf("disk %s: %w", s.Target, err)
		}
		j.o.logf("domain %s is shut off: reading disk %s from %s", j.vm.Name, s.Target, s.Path)
		err = j.readDisk(ctx, diskPlan{spec: s, exportName: "disk"}, "unix", sock)
		stop()
		if err != nil {
			return err
		}
	}
	return j.commit(ctx)
}

// serveFile starts `qemu-nbd --read-only` for one disk file on a unix socket in a fresh folder
// under dir, and returns the socket and a stop function that ends qemu-nbd and removes the
// folder. qemu-nbd takes a shared lock on the image: a domain started meanwhile is refused
// rather than read half-written.
func serveFile(ctx context.Context, qemuNBD, dir, path, format string) (string, func(), error) {
	tmp, err := os.MkdirTemp(dir, "snapferry-nbd-")
	if err != nil {
		return "", nil, fmt.Errorf("qemu-nbd folder: %w", err)
	}
	sock := filepath.Join(tmp, "sock")
	cmd := exec.Command(qemuNBD, "--read-only", "--persistent", "--shared=2", "--format="+format, "--export-name=disk", "--socket="+sock, path)
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
		if _, err := os.Stat(sock); err == nil {
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
