package cron

import "strings"

// shellSafe reports whether b needs no quoting in a POSIX shell word.
func shellSafe(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
		strings.IndexByte("@+=:,./_-", b) >= 0
}

// QuoteCrontabArg quotes one argument for the command part of a crontab line run by busybox
// ash, and escapes '%' the way crond needs.
//
// Crond implementations disagree on '%': Vixie-style ones turn an unescaped '%' into a line
// break and "\%" into '%', busybox builds may pass the text to the shell untouched. So a '%' is
// always written as \% outside any quotes: crond that unescapes hands the shell a bare '%', crond
// that does not hands it "\%", which the shell itself reads as '%'. Everything else that is not
// plainly safe goes inside single quotes, where ash interprets nothing.
func QuoteCrontabArg(arg string) string {
	if arg == "" {
		return "''"
	}
	parts := strings.Split(arg, "%")
	for i, p := range parts {
		if p != "" {
			parts[i] = QuoteShellArg(p)
		}
	}
	return strings.Join(parts, `\%`)
}

// QuoteCrontabCommand joins args into a crontab command with QuoteCrontabArg.
func QuoteCrontabCommand(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = QuoteCrontabArg(a)
	}
	return strings.Join(q, " ")
}

// QuoteShellArg quotes one argument for a plain shell script (local.sh): no crontab '%' rule.
func QuoteShellArg(arg string) string {
	if arg != "" && strings.IndexFunc(arg, func(r rune) bool { return r > 0x7f || !shellSafe(byte(r)) }) < 0 {
		return arg
	}
	return "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
}
