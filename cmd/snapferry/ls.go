package main

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/tree"
)

func runLs(a *app, args []string) int {
	repoFlag := a.flags.String("repo", "", "repository (env SNAPFERRY_REPO)")
	source := a.flags.String("source", "", "with latest: the source whose newest snapshot to list")
	long := a.flags.BoolP("long", "l", false, "show mode, size and time")
	a.addSSHFlags()
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return a.fail(usagef("ls takes one snapshot: snapferry ls SNAPSHOT[:PATH] --repo=REPO"))
	}
	spec, err := repoSpec(*repoFlag, "repo")
	if err != nil {
		return a.fail(err)
	}
	ref, sub := splitSnapshotRef(pos[0])
	r, err := a.openRepo(spec, false)
	if err != nil {
		return a.fail(err)
	}
	defer r.Close()
	si, err := a.findSnapshot(r, ref, repo.SnapshotFilter{Source: *source})
	if err != nil {
		return a.fail(err)
	}
	if handled, code := a.lsInsideDisk(r, si.Snapshot, sub, *long); handled { // IMAGE/pN/PATH (ls_disk.go)
		return code
	}
	prefix := ""
	if sub != "" {
		prefix = path.Clean("/" + sub)
	}
	for _, d := range si.Snapshot.Disks {
		if a.jsonOut {
			a.printJSONLine(map[string]any{"type": "disk", "name": d.Name, "path": d.Path, "device": d.Device, "size": d.Size, "allocated": d.Allocated, "format": d.Format})
		} else {
			fmt.Fprintf(a.stdout, "disk %-12s %10s (allocated %s) %s %s\n", d.Name, humanBytes(d.Size), humanBytes(d.Allocated), d.Device, d.Path)
		}
	}
	if si.Snapshot.Tree == nil {
		return exitOK
	}
	err = tree.List(a.ctx, r, *si.Snapshot.Tree, func(p string, n *repo.Node) error {
		if prefix != "" && p != prefix && !strings.HasPrefix(p, prefix+"/") {
			return nil
		}
		switch {
		case a.jsonOut:
			a.printJSONLine(map[string]any{"path": p, "type": n.Type, "size": n.Size, "mode": os.FileMode(n.Mode).String(), "mtime": n.ModTime})
		case *long:
			fmt.Fprintf(a.stdout, "%s %10d %s %s\n", os.FileMode(n.Mode), n.Size, n.ModTime.Local().Format("2006-01-02 15:04"), p)
		default:
			fmt.Fprintln(a.stdout, p)
		}
		return nil
	})
	if err != nil {
		return a.fail(err)
	}
	return exitOK
}
