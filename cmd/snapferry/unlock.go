package main

import "fmt"

// runUnlock is `snapferry unlock --repo=REPO [--all]`: remove stale locks (dead processes,
// unrefreshed for 30 minutes), or every lock with --all when the operator knows nothing runs.
func runUnlock(a *app, args []string) int {
	repoFlag := a.addRepoFlag()
	all := a.flags.Bool("all", false, "remove every lock, also live ones (only when no backup or prune runs)")
	r, code := a.openRepoOnly(args, repoFlag, false)
	if r == nil {
		return code
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
