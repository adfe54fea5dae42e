package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/pidmgr"
	"github.com/snapferry/snapferry/transfer/remoterun"
)

// version is stamped by `make build` (-X main.version=...).
var version = "dev"

// command is one subcommand. run returns the process exit status.
type command struct {
	name    string
	summary string
	run     func(a *app, args []string) int
}

// commands lists every subcommand; the table is built per call so there is no package state.
func commands() []command {
	return []command{
		{"init", "create a repository", runInit},
		{"backup", "back up disk images, folders or VMs", runBackup},
		{"replica", "keep a ready-to-run copy on another host, sending changed blocks", runReplica},
		{"snapshots", "list the snapshots of a repository", runSnapshots},
		{"ls", "list the contents of a snapshot", runLs},
		{"mount", "serve a repository read-only as a folder (FUSE, Linux)", runMount},
		{"restore", "restore a snapshot", runRestore},
		{"restore-state", "rebuild this host's jobs and schedule from its backups", runRestoreState},
		{"check", "verify a repository", runCheck},
		{"forget", "remove snapshots by a keep policy", runForget},
		{"prune", "remove data no snapshot needs", runPrune},
		{"copy", "copy snapshots to another repository (any kind), sending what it lacks", runCopy},
		{"retain", "renew S3 Object Lock retention of what recent snapshots need", runRetain},
		{"undelete", "bring back files removed from an S3 Object Lock repository", runUndelete},
		{"rebuild-index", "rebuild the index from the packs", runRebuildIndex},
		{"repair", "take damaged blobs out of the index so backups store them again", runRepair},
		{"unlock", "remove stale repository locks", runUnlock},
		{"pid", "the PID registry: list, cleanup, kill-idle", runPid},
		{"jobs", "the job history", runJobs},
		{"cron", "scheduled jobs: add, list, remove, run, install, due, suspend, resume", runCron},
		{"vms", "list the VMs of this host", runVms},
		{"status", "is everything healthy here?", runStatus},
		{"tape", "tape drives on this host: label, scan, list, status", runTape},
		{"serve", "serve a repository over SSH (the far side of ssh://)", runServe},
		{"key", "passwords of an encrypted repository: add, list, remove", runKey},
		{"version", "print the version", runVersion},
	}
}

// defaultMemoryLimit keeps the Go heap well inside the ESXi shell's shared memory pool (about
// 800 MB for every shell process together): the GC works harder near it instead of growing.
// GOMEMLIMIT overrides it, as the Go runtime documents.
const defaultMemoryLimit = 256 << 20

// defaultGCPercent: the heap may grow half its live size before a collection, not all of it.
// A backup's live heap is mostly buffers in flight, so this costs little CPU and keeps the peak
// RSS of an image backup near 50 MiB instead of 62 (measured); GOGC overrides it.
const defaultGCPercent = 50

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	stop, stopMem := startCPUProfile(), startMemProfile()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stopMem()
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand. It is separate from main so tests drive the CLI in-process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	// Crontab lines and the boot stanza put global options first (snapferry --home=DIR cron run).
	args = globalOptionsAfterCommand(args)
	if args[0] == "--version" {
		args = []string{"version"}
	}
	// The far side of a --host launch: stdin EOF cancels the job, and the job (and anything it
	// starts) registers as remote.
	remote := args[0] == remoterun.CancelFlag
	if remote {
		args = args[1:]
		os.Setenv(jobrun.EnvOrigin, string(pidmgr.TypeRemote))
		if len(args) == 0 {
			return exitUsage
		}
	}
	for _, c := range commands() {
		if c.name == args[0] {
			a := newApp(c.name, stdout, stderr)
			if opensRepository(c.name) { // repository commands read --password-file (secrets.go)
				a.addPasswordFlag()
			}
			a.cancelOnStdinEOF = remote
			if host, rest, ok := splitHostFlags(args[1:]); ok && !remote {
				return a.launchOnHost(host, append([]string{c.name}, rest...))
			}
			return c.run(a, args[1:])
		}
	}
	fmt.Fprintf(stderr, "snapferry: unknown command %q; run `snapferry help` for the list\n", args[0])
	return exitUsage
}

func usage(w io.Writer) {
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	var b strings.Builder
	b.WriteString("snapferry: backups for hypervisor hosts\n\nUsage: snapferry COMMAND [options]\n\nCommands:\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "  %-14s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun `snapferry COMMAND --help` for a command's options. Exit codes: 0 ok, 1 failed,\n" +
		"2 usage, 3 partial, 10 not a repository, 11 locked, 12 wrong password, 130 interrupted.\n")
	io.WriteString(w, b.String())
}
