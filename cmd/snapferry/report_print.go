package main

import (
	"fmt"
	"io"
)

// printReport ends a repository operation that returns a report (check, prune, repair): prog is
// closed first, so that no progress line lands inside the report; then the operation's error is
// returned as it is, or the report printed, as JSON with --json, else by text.
func (a *app) printReport(prog *renderer, rep any, err error, text func()) error {
	prog.Close()
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.printJSON(rep)
		return nil
	}
	text()
	return nil
}

// dryRunVerb is how a summary line names its command: with --dry-run it says nothing changed.
func dryRunVerb(cmd string, dryRun bool) string {
	if dryRun {
		return cmd + " --dry-run (nothing changed)"
	}
	return cmd
}

// printEach prints one line per item of a report's list: format holds one verb, for the item.
func printEach[T any](w io.Writer, format string, items []T) {
	for _, it := range items {
		fmt.Fprintf(w, format, it)
	}
}
