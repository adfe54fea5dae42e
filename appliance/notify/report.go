package notify

import (
	"fmt"
	"sort"
	"time"
)

// Result is how a job or one VM of it ended.
type Result string

// Results, ordered from worst to best by rank.
const (
	Failure Result = "failure"
	Partial Result = "partial"
	Success Result = "success"
)

func (r Result) rank() int {
	switch r {
	case Failure:
		return 0
	case Partial:
		return 1
	case Success:
		return 2
	}
	return 0 // unknown results sort with the failures: someone must look at them
}

// VMRow is one VM (or file source) in a report.
type VMRow struct {
	Name string `json:"name"`
	Mode string `json:"mode"` // hot, warm, cold, files
	// Size is what was read (the allocated size of the disks), Changed the part that differed
	// from the last backup, Stored the new bytes that reached the repository (compressed).
	Size     int64         `json:"size"`
	Changed  int64         `json:"changed"`
	Stored   int64         `json:"stored"`
	Duration time.Duration `json:"duration_ns"`
	Result   Result        `json:"result"`
	Error    string        `json:"error,omitempty"`
}

// Speed is bytes read per second, 0 when no time was measured.
func (r VMRow) Speed() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Size) / r.Duration.Seconds()
}

// Totals describe the repository after the job.
type Totals struct {
	Repository string `json:"repository"`
	Snapshots  int    `json:"snapshots"`
	// StoredBytes is the repository's size on disk; RawBytes what it holds before dedup and
	// compression; FreeBytes the space left on the store (-1 when unknown).
	StoredBytes int64 `json:"stored_bytes"`
	RawBytes    int64 `json:"raw_bytes"`
	FreeBytes   int64 `json:"free_bytes"`
}

// Report is everything an e-mail or a summary says about one job run.
type Report struct {
	Job    string    `json:"job"`
	JobID  string    `json:"job_id,omitempty"`
	Host   string    `json:"host,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Result Result    `json:"result"`
	// Attempt is the attempt number that produced this report (1 without retries).
	Attempt int     `json:"attempt,omitempty"`
	Rows    []VMRow `json:"rows"`
	// Errors are job-level problems not tied to one VM (store unreachable, leftover snapshot).
	Errors []string `json:"errors,omitempty"`
	Totals *Totals  `json:"totals,omitempty"`
	// Events are what happened during the run that hooks may want beside the end event
	// (snapshot.leftover, vm.failure, store.low-space); `cron run` fires them.
	Events []Notice `json:"events,omitempty"`
}

// Notice is one event a job reports, with the details its hook gets as SNAPFERRY_* variables.
type Notice struct {
	Event   Event             `json:"event"`
	Details map[string]string `json:"details,omitempty"`
}

// SortedRows returns the rows with failures first, then partial ones, then successes, each group
// in the original order, so the reader sees what needs attention at the top.
func (r Report) SortedRows() []VMRow {
	rows := append([]VMRow(nil), r.Rows...)
	sort.SliceStable(rows, func(a, b int) bool { return rows[a].Result.rank() < rows[b].Result.rank() })
	return rows
}

// Subject is the e-mail subject: result first so a mailbox list shows it.
func (r Report) Subject() string {
	failed := 0
	for _, row := range r.Rows {
		if row.Result != Success {
			failed++
		}
	}
	s := fmt.Sprintf("[snapferry] %s: %s", upper(r.Result), r.Job)
	if r.Host != "" {
		s += " on " + r.Host
	}
	if len(r.Rows) > 0 {
		noun := "VMs"
		if r.rowNoun() != "VM" {
			noun = "sources"
		}
		s += fmt.Sprintf(" (%d of %d %s ok)", len(r.Rows)-failed, len(r.Rows), noun)
	}
	return s
}

// rowNoun is what the rows are: "VM" when every row is a VM (a hot, warm or cold copy), else
// "Source" (folders, images, or a mix), so a folder job's mail never speaks of VMs.
func (r Report) rowNoun() string {
	for _, row := range r.Rows {
		switch row.Mode {
		case "hot", "warm", "cold":
		default:
			return "Source"
		}
	}
	return "VM"
}

func upper(r Result) string {
	switch r {
	case Failure:
		return "FAILURE"
	case Partial:
		return "PARTIAL"
	case Success:
		return "SUCCESS"
	}
	return "UNKNOWN (" + string(r) + ")"
}

// HumanBytes formats a byte count with binary units: "1.5 GiB".
func HumanBytes(n int64) string {
	if n < 0 {
		return "unknown"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// HumanDuration rounds to seconds ("1h2m3s").
func HumanDuration(d time.Duration) string {
	if d < time.Second && d > 0 {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// HumanSpeed formats bytes per second ("85.3 MiB/s"), "-" when unknown.
func HumanSpeed(bps float64) string {
	if bps <= 0 {
		return "-"
	}
	return HumanBytes(int64(bps)) + "/s"
}
