package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/cron"
)

// cronSubcommand is one `snapferry cron ...` subcommand; run gets the arguments after its name.
type cronSubcommand struct {
	name, usage string
	run         func(a *app, args []string) int
}

// cronSubcommands lists the subcommands; built per call so there is no package state.
func cronSubcommands() []cronSubcommand {
	return []cronSubcommand{
		{"add", `add NAME "SCHEDULE" [options] -- ARGS...   store a job (ARGS: a snapferry command)`, runCronAdd},
		{"list", "list                                   the jobs, their next run and the suspend state", runCronList},
		{"remove", "remove NAME                            delete a job", runCronRemove},
		{"run", "run NAME                               run a job now, with its retries, hooks and mail", runCronRun},
		{"install", "install [--crontab=FILE] [--persist] [--local-sh=FILE] [--smtp-firewall]", runCronInstall},
		{"due", "due [--at=TIME] [--until=TIME]         which jobs start at a time or until a time", runCronDue},
		{"suspend", "suspend                                pause all scheduling, keep every job", runCronSuspend},
		{"resume", "resume                                 end a suspend", runCronResume},
	}
}

// runCron is `snapferry cron SUBCOMMAND ...` (docs/scheduling.md).
func runCron(a *app, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		cronUsage(a.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range cronSubcommands() {
		if c.name == args[0] {
			a.cmd = "cron " + c.name
			a.flags.Usage = func() {
				fmt.Fprintf(a.stderr, "Usage: snapferry cron %s\n\nOptions:\n", c.usage)
				a.flags.PrintDefaults()
			}
			return c.run(a, args[1:])
		}
	}
	var names []string
	for _, c := range cronSubcommands() {
		names = append(names, c.name)
	}
	fmt.Fprintf(a.stderr, "snapferry cron: unknown subcommand %q; want one of: %s\n", args[0], strings.Join(names, ", "))
	return exitUsage
}

func cronUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString("Usage: snapferry cron SUBCOMMAND\n\n")
	for _, c := range cronSubcommands() {
		b.WriteString("  " + c.usage + "\n")
	}
	b.WriteString("\nRun `snapferry cron SUBCOMMAND --help` for its options; docs/scheduling.md has the details.\n")
	io.WriteString(w, b.String())
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
func (a *app) addCrontabFlag(dst *string) {
	a.flags.StringVar(dst, "crontab", "", "crontab file to edit (default: root's table on ESXi, else the user's crontab via crontab(1))")
}

// cronLineOptions are the binary and state folder every crontab line starts.
func cronLineOptions(home string) (cron.LineOptions, error) {
	bin, err := cron.BinaryPath(os.Args[0])
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

// cronJobCommands are the snapferry commands a job may run: the ones that do their work
// unattended. Interactive or read-only commands (ls, snapshots, pid) make no sense at 2 a.m.,
// and `cron` itself is refused by the library.
func cronJobCommands() []string {
	return []string{"backup", "replica", "check", "forget", "prune", "restore"}
}

// checkJobCommand refuses a job whose command this snapferry cannot run unattended, so the
// mistake shows at `cron add` and not in a log at 2 a.m.
func checkJobCommand(args []string) error {
	if len(args) == 0 {
		return usagef("no command after --; e.g. -- backup --vm=all --to=REPO")
	}
	known := false
	for _, c := range commands() {
		known = known || c.name == args[0]
	}
	for _, c := range cronJobCommands() {
		if c == args[0] {
			if !known {
				return usagef("command %q is not available in this snapferry build (snapferry help lists them)", args[0])
			}
			return nil
		}
	}
	return usagef("command %q cannot be scheduled; a job runs one of: %s", args[0], strings.Join(cronJobCommands(), ", "))
}

// cronNote prints a line for people: to stdout, or to stderr when stdout carries JSON.
func (a *app) cronNote(format string, args ...any) {
	w := a.stdout
	if a.jsonOut {
		w = a.stderr
	}
	fmt.Fprintf(w, format+"\n", args...)
}
