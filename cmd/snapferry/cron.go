package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/executable"
)

// newCronCmd is `snapferry cron COMMAND ...`: scheduled jobs (docs/scheduling.md).
func newCronCmd(a *app) *cobra.Command {
	return groupCmd("cron COMMAND", "scheduled jobs: add, list, remove, run, install, due, suspend, resume",
		"Cron keeps named jobs (a snapferry command, a schedule, retries, mail and hooks) in the state\n"+
			"folder and installs one crontab line per job that runs `snapferry cron run NAME`\n"+
			"(docs/scheduling.md).",
		newCronAddCmd(a), newCronListCmd(a), newCronRemoveCmd(a), newCronRunCmd(a), newCronInstallCmd(a),
		newCronDueCmd(a), newCronSuspendCmd(a, true), newCronSuspendCmd(a, false))
}

// cronStore opens the jobs file of the state folder and returns the folder as an absolute path:
// crontab lines and the local.sh stanza name it, and crond starts in another folder.
func (a *app) cronStore() (*cron.Store, string, error) {
	dir, err := a.stateDir()
	if err != nil {
		return nil, "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", fmt.Errorf("state folder %s: %w", dir, err)
	}
	return cron.NewStore(abs), abs, nil
}

// addCrontabFlag registers --crontab on the subcommands that write or refresh the crontab.
func (a *app) addCrontabFlag(fs *pflag.FlagSet, dst *string) {
	fs.StringVar(dst, "crontab", "", "crontab file to edit (default: root's table on ESXi, else the user's crontab via crontab(1))")
}

// cronLineOptions are the binary and state folder every crontab line starts.
func cronLineOptions(home string) (cron.LineOptions, error) {
	bin, err := executable.Path()
	if err != nil {
		return cron.LineOptions{}, err
	}
	return cron.LineOptions{Binary: bin, Home: home}, nil
}

// refreshCrontab re-installs the lines after add, remove, suspend and resume, but only where
// snapferry lines are installed already: those commands never write a crontab unasked. A host
// without crontab(1) has nothing installed either. It reports whether lines are installed, so
// the caller can say that `cron install` is still to be run.
func (a *app) refreshCrontab(store *cron.Store, home, crontabPath string) (bool, error) {
	target, restart := cron.TargetFor(crontabPath, cron.IsESXi(), cron.ExecRunner)
	installed, err := cron.Installed(a.ctx, target)
	if errors.Is(err, exec.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("jobs file updated, but %w; run `snapferry cron install` once it is readable", err)
	}
	if !installed {
		return false, nil
	}
	o, err := cronLineOptions(home)
	if err != nil {
		return true, fmt.Errorf("jobs file updated, but the crontab was not: %w", err)
	}
	changed, err := cron.InstallFromStore(a.ctx, store, o, target, restart)
	if err != nil {
		return true, fmt.Errorf("jobs file updated, but %w", err)
	}
	if changed {
		a.cronNote("crontab %s updated", target)
	}
	return true, nil
}

// cronJobCommands are the snapferry commands a job may run, each with the flag that names its
// repository or target: the commands that do their work unattended (copy: the off-site leg of
// 3-2-1; retain: the daily Object Lock renewal). Interactive or read-only commands (ls,
// snapshots, pid) make no sense at 2 a.m., and `cron` itself is refused by the library.
func cronJobCommands() map[string]string {
	return map[string]string{"backup": "to", "replica": "to", "check": "repo", "forget": "repo", "prune": "repo",
		"restore": "from", "copy": "to", "retain": "repo"}
}

// checkJobCommand parses a job's command line with this snapferry's own command definitions, so
// an unknown command or flag, a bad argument or a missing repository shows at `cron add` and not
// in a log at 2 a.m.
func checkJobCommand(args []string) error {
	if len(args) == 0 {
		return usagef("no command after --; e.g. -- backup --vm=all --to=REPO")
	}
	jobs := cronJobCommands()
	repoFlag, ok := jobs[args[0]]
	if !ok {
		return usagef("command %q cannot be scheduled; a job runs one of: %s", args[0], strings.Join(slices.Sorted(maps.Keys(jobs)), ", "))
	}
	root := newRootCmd(&app{stdout: io.Discard, stderr: io.Discard})
	c, rest, err := root.Find(args)
	if err != nil || c == root {
		return usagef("command %q is not available in this snapferry build (snapferry help lists them)", args[0])
	}
	line := strings.Join(args, " ")
	if err := c.ParseFlags(rest); err != nil {
		return usagef("the job's command %q: %v", line, flagError(c, err))
	}
	if err := c.ValidateArgs(c.Flags().Args()); err != nil {
		return usagef("the job's command %q: %v", line, err)
	}
	if !c.Flags().Changed(repoFlag) {
		return usagef("the job's command %q names no repository: add --%s=REPO (crond starts jobs without $SNAPFERRY_REPO)", line, repoFlag)
	}
	return nil
}

// cronNote prints a line for people: to stdout, or to stderr when stdout carries JSON.
func (a *app) cronNote(format string, args ...any) {
	w := a.stdout
	if a.jsonOut {
		w = a.stderr
	}
	fmt.Fprintf(w, format+"\n", args...)
}
