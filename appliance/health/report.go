package health

import (
	"time"

	"github.com/snapferry/snapferry/cron/history"
	"github.com/snapferry/snapferry/pidmgr"
)

// Report is the state of one host.
type Report struct {
	Version   string            `json:"version"`
	Host      string            `json:"host"`
	StateDir  string            `json:"state_dir"`
	Time      time.Time         `json:"time"`
	Registry  []pidmgr.Status   `json:"registry"`
	Running   []history.Job     `json:"running"`
	Cron      CronState         `json:"cron"`
	LastRuns  []history.Summary `json:"last_runs"`
	Leftovers []Leftover        `json:"leftover_snapshots"`
	// Attention lists what needs a human, worst first; empty means healthy.
	Attention []string `json:"attention"`
	// Notes are facts that need nobody (what could not be checked and why).
	Notes []string `json:"notes,omitempty"`
}

// CronState is the scheduling side.
type CronState struct {
	Crontab     string    `json:"crontab"`
	Suspended   bool      `json:"suspended"`
	Jobs        []CronJob `json:"jobs"`
	CrondActive *bool     `json:"crond_running,omitempty"` // nil when it could not be told
}

// CronJob is one job definition and whether its crontab line is in place.
type CronJob struct {
	Name      string    `json:"name"`
	Schedule  string    `json:"schedule"`
	Installed bool      `json:"installed"`
	NextRun   time.Time `json:"next_run,omitzero"`
}

// Leftover is a snapferry VM snapshot no running job owns: a crashed run left it.
type Leftover struct {
	VMID     string `json:"vm_id"`
	VM       string `json:"vm"`
	Snapshot string `json:"snapshot"`
}

// Healthy reports a host that needs nobody.
func (r *Report) Healthy() bool { return len(r.Attention) == 0 }
