package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newDocsCmd is the hidden `snapferry docs`: the man pages and docs/cli.md, generated from the
// same command definitions as --help and shell completion (`make docs`).
func newDocsCmd(a *app, root *cobra.Command) *cobra.Command {
	var manDir, markdown string
	c := &cobra.Command{
		Use:    "docs [--man=DIR] [--markdown=FILE]",
		Short:  "write the man pages and the command reference",
		Long:   "Docs writes one man page per command into --man=DIR and the command reference into --markdown=FILE.",
		Hidden: true,
		Args:   noArgs,
		RunE: func(*cobra.Command, []string) error {
			if manDir == "" && markdown == "" {
				return usagef("give --man=DIR, --markdown=FILE or both")
			}
			if manDir != "" {
				if err := writeManPages(root, manDir); err != nil {
					return err
				}
			}
			if markdown != "" {
				var b bytes.Buffer
				writeReference(&b, root)
				return writeFileAtomic(markdown, b.Bytes())
			}
			return nil
		},
	}
	c.Flags().StringVar(&manDir, "man", "", "folder for the man pages (section 1)")
	c.Flags().StringVar(&markdown, "markdown", "", "file for the command reference (docs/cli.md)")
	return c
}

func writeManPages(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root.DisableAutoGenTag = true // no date in the pages: they are reproducible
	return doc.GenManTree(root, &doc.GenManHeader{Title: "SNAPFERRY", Section: "1", Source: "snapferry " + version}, dir)
}

// writeReference writes the command reference: every available command with its usage line,
// description, options and examples, in the order of `snapferry help`.
func writeReference(w io.Writer, root *cobra.Command) {
	fmt.Fprint(w, "# snapferry command reference\n\n"+
		"Generated from the command definitions by `make docs` (`snapferry docs --markdown=docs/cli.md`);\n"+
		"`snapferry COMMAND --help` prints the same. JSON output is described in [json.md](json.md).\n\n")
	fmt.Fprintf(w, "```\n%s\n```\n\n", strings.TrimSpace(root.Long))
	fmt.Fprint(w, "Global options, accepted before or after the command:\n\n")
	fmt.Fprintf(w, "```\n%s```\n", root.PersistentFlags().FlagUsages())
	walk(root, func(c *cobra.Command) {
		if c == root || !c.IsAvailableCommand() || c.Name() == "help" || c.HasParent() && c.Parent().Name() == "completion" {
			return
		}
		fmt.Fprintf(w, "\n## %s\n\n", c.CommandPath())
		fmt.Fprintf(w, "```\n%s\n```\n\n", c.UseLine())
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(cmp.Or(c.Long, c.Short)))
		if c.HasAvailableSubCommands() {
			fmt.Fprint(w, "\nCommands:\n\n")
			for _, s := range c.Commands() {
				if s.IsAvailableCommand() {
					fmt.Fprintf(w, "- `%s`: %s\n", s.Name(), s.Short)
				}
			}
		}
		if fs := c.LocalNonPersistentFlags(); fs.HasAvailableFlags() {
			fmt.Fprintf(w, "\nOptions:\n\n```\n%s```\n", fs.FlagUsages())
		}
		if c.Example != "" {
			fmt.Fprintf(w, "\nExamples:\n\n```\n%s\n```\n", c.Example)
		}
	})
}

// writeFileAtomic writes a file under a temporary name and renames it, so a reader never sees
// half of it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
