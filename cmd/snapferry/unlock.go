package main

import "fmt"

// runUnlock is `snapferry unlock --repo=REPO [--all]`: remove stale locks (dead processes,
// unrefreshed for 30 minutes), or every lock with --all when the operator knows nothing runs.
func runUnlock(a *app, args []string) int {
	repoFlag := a.flags.String("repo", "", "repository (env SNAPFERRY_REPO)")
	all := a.flags.Bool("all", false, "remove every lock, also live ones (only when no backup or prune runs)")
	a.addSSHFlags()
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("unlock takes no arguments, got %q", pos))
	}
	spec, err := repoSpec(*repoFlag, "repo")
	if err != nil {
		return a.fail(err)
	}
	r, err := a.openRepo(spec, false)
	if err != nil {
		return a.fail(err)
	}
	defer r.Close()
	n, err := r.RemoveStaleLocks(a.ctx, *all)
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(map[string]int{"removed": n})
		return exitOK
	}
	fmt.Fprintf(a.stdout, "removed %d locks\n", n)
	return exitOK
}
