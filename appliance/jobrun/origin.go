package jobrun

import (
	"strconv"

	"github.com/snapferry/snapferry/appliance/cronrun"
	"github.com/snapferry/snapferry/pidmgr"
)

// EnvOrigin is set to "remote" on the far side of a --host launch (the launcher also passes
// --origin=remote; the variable covers commands that a remote job starts in turn).
const EnvOrigin = "SNAPFERRY_ORIGIN"

// Origin is who started this process and, for cron, which job and attempt.
type Origin struct {
	Type    pidmgr.Type
	CronJob string
	Attempt int
}

// DetectOrigin reads the origin from an explicit flag value ("" when absent) and the
// environment that `cron run` and --host set. An explicit flag wins.
func DetectOrigin(flag string, getenv func(string) string) (Origin, error) {
	o := Origin{Type: pidmgr.TypeUser, Attempt: 1}
	if job := getenv(cronrun.EnvCronJob); job != "" {
		o.Type, o.CronJob = pidmgr.TypeCron, job
		if n, err := strconv.Atoi(getenv(cronrun.EnvAttempt)); err == nil && n > 0 {
			o.Attempt = n
		}
	}
	if getenv(EnvOrigin) == string(pidmgr.TypeRemote) {
		o.Type = pidmgr.TypeRemote
	}
	if flag != "" {
		t, err := pidmgr.ParseType(flag)
		if err != nil {
			return o, err
		}
		o.Type = t
	}
	return o, nil
}
