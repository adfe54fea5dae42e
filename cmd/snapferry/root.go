package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/cron/exitcode"
)

// newRootCmd builds the whole command tree for one command line. Each command is defined in its
// own file by a newXxxCmd(a) function; commands() lists them. The tree is built per call, so
// there is no package state.
func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "snapferry COMMAND [options]",
		Short: "backups for hypervisor hosts",
		Long: "snapferry backs up VMs, disk images and folders from ESXi and Linux hosts into a deduplicated\n" +
			"repository (a folder, ssh:// or sftp://), restores them, and keeps replicas and schedules.\n\n" +
			"Exit codes: 0 ok, 1 failed, 2 usage, 3 partial, 10 not a repository, 11 locked,\n" +
			"12 wrong password, 130 interrupted.",
		Example: "  snapferry init /backup/repo\n" +
			"  snapferry backup --vm=all --to=/backup/repo\n" +
			"  snapferry --home=/vmfs/volumes/ds1/snapferry cron list",
		SilenceErrors: true, // run prints the error once (exit.go)
		SilenceUsage:  true,
		Args:          subcommandArgs,
		RunE:          needSubcommand,
		PersistentPreRun: func(c *cobra.Command, _ []string) {
			a.start(commandName(c))
		},
		// bash and zsh completion (and fish, powershell) come from cobra's completion command.
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	pf := root.PersistentFlags()
	pf.BoolVar(&a.jsonOut, "json", false, "print JSON instead of text (docs/json.md)")
	pf.StringVar(&a.home, "home", "", "state folder (env SNAPFERRY_HOME)")
	root.SetFlagErrorFunc(flagError)
	for _, c := range commands(a) {
		root.AddCommand(c)
	}
	root.AddCommand(newDocsCmd(a, root))
	// Made now rather than when the command line runs, so help, docs and completion see the
	// same tree.
	root.InitDefaultCompletionCmd()
	setHelp(root)
	a.routeHost(root)
	return root
}

// commands lists every top-level command. Adding a command is one file with its newXxxCmd and
// one line here.
func commands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newInitCmd(a),
		newBackupCmd(a),
		newReplicaCmd(a),
		newSnapshotsCmd(a),
		newLsCmd(a),
		newRestoreCmd(a),
		newRestoreStateCmd(a),
		newCopyCmd(a),
		newMountCmd(a),
		newRetainCmd(a),
		newUndeleteCmd(a),
		newCheckCmd(a),
		newForgetCmd(a),
		newPruneCmd(a),
		newRebuildIndexCmd(a),
		newRepairCmd(a),
		newUnlockCmd(a),
		newKeyCmd(a),
		newPidCmd(a),
		newJobsCmd(a),
		newCronCmd(a),
		newVmsCmd(a),
		newStatusCmd(a),
		newTapeCmd(a),
		newServeCmd(a),
		newVersionCmd(a),
	}
}

// groupCmd is a command that only holds subcommands (cron, tape, key, pid).
func groupCmd(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Long: long, Args: subcommandArgs, RunE: needSubcommand}
	c.AddCommand(subs...)
	return c
}

// subcommandArgs refuses an unknown subcommand with the nearest names ("did you mean").
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usagef("%s (run `%s --help` for the list)", msg, c.CommandPath())
}

// needSubcommand is the run of a command that holds subcommands and got none: its help, on
// stderr, and exit 2.
func needSubcommand(c *cobra.Command, _ []string) error {
	fmt.Fprint(c.ErrOrStderr(), c.UsageString())
	return exitcode.New(exitcode.Usage, nil)
}

// noArgs, exactArgs and maxArgs check positional arguments with a message that shows the usage.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) != 0 {
		return usagef("%s takes no arguments, got %q (usage: %s)", c.CommandPath(), args, c.UseLine())
	}
	return nil
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s, got %d (usage: %s)", c.CommandPath(), plural(n, "argument"), len(args), c.UseLine())
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("%s takes at most %s, got %d (usage: %s)", c.CommandPath(), plural(n, "argument"), len(args), c.UseLine())
		}
		return nil
	}
}

// flagError makes a flag parse error a usage error, with the nearest flag names for an unknown
// one.
func flagError(c *cobra.Command, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		if s := suggestFlags(c, name); len(s) > 0 {
			msg += "; did you mean --" + strings.Join(s, " or --") + "?"
		}
	}
	return exitcode.New(exitcode.Usage, fmt.Errorf("%s (run `%s --help` for its options)", msg, c.CommandPath()))
}
