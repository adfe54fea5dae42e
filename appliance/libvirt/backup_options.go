package libvirt

import (
	"fmt"
	"os"
	"time"

	"github.com/snapferry/snapferry/images/progress"
)

// BackupOptions tune a libvirt domain backup. JobID and LockDir are required.
type BackupOptions struct {
	JobID string // the new checkpoint is snapferry-<Chain>-<JobID>
	// Chain names the checkpoint chain: the repository's id (short), so each repository keeps
	// its own checkpoint and its incrementals see every change since its own last backup.
	Chain        string
	Host         string // recorded in the repository snapshot; default os.Hostname()
	Tags         []string
	ExcludeDisks []string // targets (vdb) or source file names
	// Quiesce freezes the guest file systems through the QEMU guest agent for the moment the
	// backup job starts; when the agent does not answer the backup goes on unquiesced, with a
	// warning.
	Quiesce bool
	// ScratchDir holds QEMU's scratch files (the blocks the guest overwrites while a disk is
	// being read); default os.TempDir(). They are removed when the job ends.
	ScratchDir string
	// QemuNBD is the qemu-nbd program for shut-off domains; default "qemu-nbd" from PATH.
	QemuNBD  string
	LockDir  string
	LockWait time.Duration
	Progress progress.Reporter
	Log      func(msg string)
}

func (o *BackupOptions) defaults() error {
	if o.JobID == "" || o.LockDir == "" {
		return fmt.Errorf("libvirt backup: JobID and LockDir are required")
	}
	if o.Chain == "" {
		o.Chain = "default"
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.ScratchDir == "" {
		o.ScratchDir = os.TempDir()
	}
	if o.QemuNBD == "" {
		o.QemuNBD = "qemu-nbd"
	}
	if o.Progress == nil {
		o.Progress = progress.Nop{}
	}
	return nil
}

func (o *BackupOptions) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(fmt.Sprintf(format, args...))
	}
}
