package vmjob

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/cron/clock"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

// Mode is how a VM is kept consistent during its backup.
type Mode string

// The backup modes of --mode.
const (
	Hot  Mode = "hot"  // VM snapshot while the guest runs
	Warm Mode = "warm" // guest shut down for the snapshot, powered on at once, copy from the snapshot
	Cold Mode = "cold" // guest shut down for the whole copy
)

// UserSnapshotPolicy says what to do with a VM that already has snapshots of its own.
type UserSnapshotPolicy string

// User snapshot policies.
const (
	CloneChain UserSnapshotPolicy = "clone"  // clone the chain to a temporary thin disk (default)
	Refuse     UserSnapshotPolicy = "refuse" // refuse the VM with a message
)

// SnapshotPrefix starts the name of every VM snapshot snapferry takes; leftovers are found by it.
const SnapshotPrefix = "snapferry-"

// Repo is what a VM backup needs from a repository; *repo.Repository implements it.
type Repo interface {
	repo.BlobStore
	repo.Committer
	FindSnapshot(ctx context.Context, ref string, f repo.SnapshotFilter) (repo.SnapshotInfo, error)
}

// BackupOptions tune a VM backup. JobID and LockDir are required.
type BackupOptions struct {
	JobID           string // our VM snapshot is snapferry-<JobID>; unique per run
	Mode            Mode   // default Hot
	Quiesce         bool   // quiesce the guest file systems (hot; needs VMware Tools)
	Memory          bool   // include memory in the snapshot (hot)
	ForceOff        bool   // warm/cold: power off hard when the guest does not shut down
	ShutdownTimeout time.Duration
	ExcludeDisks    []string // vmdk1, scsi0:2, name.vmdk
	UserSnapshots   UserSnapshotPolicy
	WorkDatastore   string // where temporary chain clones go; default the datastore with most room
	Host            string // host name recorded in the repository snapshot; default os.Hostname()
	Tags            []string
	LockDir         string        // folder of the per-VM lock files
	LockWait        time.Duration // how long to wait for another job's lock (--wait)
	TempDir         string        // staging of config files (small); default os.TempDir()
	// CacheDir is the folder of block fingerprint caches (disk.CacheDir of the state folder);
	// empty: none, every block is hashed. Used when the repository tells its id (Config).
	CacheDir string
	// Rehash ignores the caches for this run: every block is hashed with BLAKE3 again, and
	// changed blocks are stored whole, not as patches.
	Rehash   bool
	Progress progress.Reporter
	// Log receives progress notes and warnings as they happen; nil discards them.
	Log func(msg string)
	// OnLeftover hears of each snapshot an earlier, killed run left on a VM, before it is
	// removed (the snapshot.leftover event); nil for none.
	OnLeftover func(vm appliance.VM, snapshot string)
	// RemoveAttempts is how often removing our VM snapshot is tried (default 3), RetryDelay the
	// pause between tries (default 2s); PollInterval how often power state is polled (default 1s).
	RemoveAttempts int
	RetryDelay     time.Duration
	PollInterval   time.Duration
	Clock          clock.Clock
}

func (o *BackupOptions) defaults() {
	if o.Mode == "" {
		o.Mode = Hot
	}
	if o.UserSnapshots == "" {
		o.UserSnapshots = CloneChain
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Minute
	}
	if o.RemoveAttempts <= 0 {
		o.RemoveAttempts = 3
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 2 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Progress == nil {
		o.Progress = progress.Nop{}
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
}

func (o *BackupOptions) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(fmt.Sprintf(format, args...))
	}
}
