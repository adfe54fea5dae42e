package main

import (
	"fmt"
	"path"

	"github.com/snapferry/snapferry/images/diskfiles"
	"github.com/snapferry/snapferry/images/repo"
)

// lsInsideDisk lists the partitions of a backed-up disk or the files inside one of them when
// sub names a disk (IMAGE, IMAGE/pN/PATH, IMAGE/pN/VG/LV/PATH). handled is false when sub names
// no disk, so ls goes on with the file tree.
func (a *app) lsInsideDisk(r *repo.Repository, sn *repo.Snapshot, sub string, long bool) (handled bool, code int) {
	d, rest, ok := diskfiles.Match(sn, sub)
	if !ok {
		return false, 0
	}
	t, err := diskfiles.Open(a.ctx, r, d, rest)
	if err != nil {
		return true, a.fail(err)
	}
	prefix := path.Join(d.Name, rest)
	err = diskfiles.List(t, prefix, false, func(it diskfiles.Item) error {
		switch {
		case a.jsonOut:
			a.printJSONLine(it)
		case it.Kind == "partition" || it.Kind == "volume":
			fmt.Fprintf(a.stdout, "%-24s %s\n", it.Path, describeVolume(it))
		case long:
			line := fmt.Sprintf("%s %10d %s %s", it.Mode, it.Size, it.ModTime.Local().Format("2006-01-02 15:04"), it.Path)
			if it.Target != "" {
				line += " -> " + it.Target
			}
			fmt.Fprintln(a.stdout, line)
		default:
			fmt.Fprintln(a.stdout, it.Path)
		}
		return nil
	})
	if err != nil {
		return true, a.fail(err)
	}
	return true, exitOK
}

// describeVolume renders a partition or logical volume: kind, size, table type, file system,
// label, and why it cannot be read where that is known.
func describeVolume(it diskfiles.Item) string {
	s := fmt.Sprintf("%-9s %-10s %-22s %-6s", it.Kind, humanBytes(it.Size), it.PartType, it.FSType)
	if it.Label != "" {
		s += " label=" + it.Label
	}
	if it.Problem != "" {
		s += " (" + it.Problem + ")"
	}
	return s
}
