package jobrun

import (
	"fmt"
	"time"

	"github.com/snapferry/snapferry/pidmgr"
)

// policy is how a job command behaves towards other snapferry processes of its registry.
type policy struct {
	// killIdle: a user launch of this command stops older user jobs of its registry first (they
	// would fight it over the same VMs and repository).
	killIdle bool
	// keepWhileBusy: newer user launches leave this job running while it makes progress. Reads
	// and maintenance (restore, check, prune) are long and lose all their work when stopped;
	// a backup or replica is replaced by the newer one instead.
	keepWhileBusy bool
	// history: the run is recorded in the job history (jobs, status, cron reports).
	history bool
}

// policyFor is the policy of each job command (docs/pid-registry.md, "Job commands").
func policyFor(command string) (policy, error) {
	switch command {
	case "backup", "replica":
		return policy{killIdle: true, history: true}, nil
	case "restore":
		return policy{killIdle: true, keepWhileBusy: true, history: true}, nil
	case "check", "prune":
		// Registered so that kill-idle can tell them busy from idle; they start no kill-idle
		// of their own: a check must not stop the backup it runs beside.
		return policy{keepWhileBusy: true}, nil
	}
	return policy{}, fmt.Errorf("job command %q: want backup, replica, restore, check or prune", command)
}

// EnvIdleAfter overrides how long a restore, check or prune may make no progress before a new
// user launch treats it as an idle leftover (a Go duration such as 5m; default 2m).
const EnvIdleAfter = "SNAPFERRY_IDLE_AFTER"

// IdleAfter reads EnvIdleAfter; an unset or invalid value gives the default (with a warning).
func IdleAfter(getenv func(string) string, warn func(string)) time.Duration {
	v := getenv(EnvIdleAfter)
	if v == "" {
		return pidmgr.DefaultIdleAfter
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		warn(fmt.Sprintf("%s=%q is not a positive duration such as 5m; using %s", EnvIdleAfter, v, pidmgr.DefaultIdleAfter))
		return pidmgr.DefaultIdleAfter
	}
	return d
}
