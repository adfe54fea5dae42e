// Command vibgen packages the snapferry linux-amd64 binary and its SMTP firewall rule file as an
// ESXi VIB (appliance/esxi/vib), reproducibly: the same inputs give the same bytes. It is run by
// scripts/build.sh (make build); it is a build tool and never shipped.
//
//	vibgen -o dist/snapferry-VERSION.vib -binary dist/snapferry-linux-amd64 \
//	       -firewall scripts/firewall/snapferry-smtp.xml -describe "$(git describe --tags --always --dirty)" \
//	       -commits "$(git rev-list --count HEAD)" -date "$(git log -1 --format=%ct)"
//
// With -print-version it only prints the VIB version that -describe and -commits map to.
// Exit status: 0 done, 1 failed, 2 usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/snapferry/snapferry/appliance/esxi/vib"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type usageError struct{ error }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vibgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "VIB file to write (written through a temporary name)")
	binary := fs.String("binary", "", "the snapferry linux-amd64 release binary")
	firewall := fs.String("firewall", "", "the SMTP firewall rule file (scripts/firewall/snapferry-smtp.xml)")
	describe := fs.String("describe", "", "git describe --tags --always --dirty of the build")
	commits := fs.Int("commits", -1, "git rev-list --count HEAD (orders builds without a release tag)")
	date := fs.Int64("date", 0, "release date in Unix seconds (the commit time, for reproducible bytes)")
	printVersion := fs.Bool("print-version", false, "print the VIB version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	version, err := vib.VersionFromDescribe(*describe, *commits)
	if err != nil {
		fmt.Fprintln(stderr, "vibgen:", err)
		return 2
	}
	if *printVersion {
		fmt.Fprintln(stdout, version)
		return 0
	}
	if err := build(*out, *binary, *firewall, *describe, version, *date); err != nil {
		fmt.Fprintln(stderr, "vibgen:", err)
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		return 1
	}
	fmt.Fprintf(stdout, "vibgen: %s (version %s)\n", *out, version)
	return 0
}

func build(out, binary, firewall, describe, version string, date int64) error {
	if out == "" || binary == "" || firewall == "" {
		return usageError{errors.New("-o, -binary and -firewall are required")}
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("read the binary: %w (run make build first)", err)
	}
	rule, err := os.ReadFile(firewall)
	if err != nil {
		return fmt.Errorf("read the firewall rule file: %w", err)
	}
	b, err := vib.Build(vib.Package{
		Name: "snapferry", Vendor: "snapferry", Version: version,
		Summary:     "snapferry: VM and file backups from the ESXi shell",
		Description: "snapferry " + describe + ": one static binary in /opt/snapferry; state stays on a datastore.",
		URL:         "https://github.com/snapferry/snapferry",
		ReleaseDate: time.Unix(date, 0).UTC(),
		Acceptance:  vib.AcceptanceCommunity,
		Files: []vib.File{
			{Path: "opt/snapferry/snapferry", Mode: 0o755, Data: bin},
			{Path: "opt/snapferry/snapferry-smtp.xml", Mode: 0o644, Data: rule},
		},
	})
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
