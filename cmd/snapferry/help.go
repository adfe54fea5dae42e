package main

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usageTemplate is the help of every command: the usage line with its positional arguments,
// one paragraph on what it does, its subcommands, only its own options, the global ones, and
// examples. `COMMAND --help` and `snapferry help COMMAND` print it and exit 0.
const usageTemplate = `Usage: {{.UseLine}}
{{with (or .Long .Short)}}
{{. | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableSubCommands}}
Commands:{{range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}
{{end}}{{if .HasAvailableLocalFlags}}
Options:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableInheritedFlags}}
Global options (also before the command):
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}
{{end}}{{if .HasExample}}
Examples:
{{.Example}}
{{end}}{{if .HasAvailableSubCommands}}
Run ` + "`{{.CommandPath}} COMMAND --help`" + ` for a command's options.
{{end}}`

// setHelp gives every command the same help layout and keeps "[options]" in the usage lines
// as the commands write them.
func setHelp(root *cobra.Command) {
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate("{{.UsageString}}")
	walk(root, func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		c.DisableFlagsInUseLine = true
		c.SuggestionsMinimumDistance = 2
	})
}

// walk calls fn for c and every command below it.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, s := range c.Commands() {
		walk(s, fn)
	}
}

// suggestFlags returns the flag names of c nearest to an unknown one, nearest first.
func suggestFlags(c *cobra.Command, name string) []string {
	name, _, _ = strings.Cut(name, "=")
	best := map[string]int{}
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := editDistance(name, f.Name)
		if d <= max(1, len(name)/3) || len(name) >= 3 && strings.HasPrefix(f.Name, name) {
			best[f.Name] = d
		}
	})
	out := slices.Collect(maps.Keys(best))
	slices.SortFunc(out, func(x, y string) int { return cmp.Or(best[x]-best[y], strings.Compare(x, y)) })
	return out
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
