package main

import (
	"slices"
	"strings"
)

// globalOptionsAfterCommand moves the state-folder and output options that come before the
// command to behind the command's arguments, where the command's flag set parses them.
//
// Package cron writes crontab lines and the local.sh boot stanza as
// `BINARY --home=DIR cron run NAME` and `BINARY --home=DIR cron install ...`; run reads the
// first argument as the command, so it must call this first for those lines to work. The options
// go before a "--", since what follows it belongs to the command (a job's arguments in
// `cron add`). Anything else before the command is left for run to refuse.
func globalOptionsAfterCommand(args []string) []string {
	var global []string
	i := 0
	for i < len(args) {
		a := args[i]
		if strings.HasPrefix(a, "--home=") || a == "--json" {
			global = append(global, a)
			i++
			continue
		}
		if a == "--home" && i+1 < len(args) {
			global = append(global, a, args[i+1])
			i += 2
			continue
		}
		break
	}
	if len(global) == 0 || i == len(args) {
		return args
	}
	rest := args[i:]
	dash := slices.Index(rest, "--")
	if dash < 0 {
		dash = len(rest)
	}
	out := make([]string, 0, len(args))
	out = append(out, rest[:dash]...)
	out = append(out, global...)
	return append(out, rest[dash:]...)
}
