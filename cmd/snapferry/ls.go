package main

import (
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/tree"
)

func newLsCmd(a *app) *cobra.Command {
	var repoFlag *string
	var source string
	var long bool
	c := &cobra.Command{
		Use:   "ls SNAPSHOT[:PATH] --repo=REPO [options]",
		Short: "list the contents of a snapshot",
		Long: "Ls lists the disks and files of a snapshot, or of the part below PATH. SNAPSHOT is an id (or a\n" +
			"unique prefix of one) or latest, with --source when the repository holds several sources.",
		Example: "  snapferry ls latest --repo=/backup/repo --source=/etc\n  snapferry ls 3f2a9c1e:/etc/ssh --repo=/backup/repo -l",
		Args:    exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.ls(*repoFlag, args[0], source, long)
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	c.Flags().StringVar(&source, "source", "", "with latest: the source whose newest snapshot to list")
	c.Flags().BoolVarP(&long, "long", "l", false, "show mode, size and time")
	a.addHostFlag(c)
	return c
}

func (a *app) ls(repoFlag, snapshot, source string, long bool) error {
	ref, sub := splitSnapshotRef(snapshot)
	r, err := a.openRepoFlag(repoFlag, false)
	if err != nil {
		return err
	}
	defer r.Close()
	si, err := a.findSnapshot(r, ref, repo.SnapshotFilter{Source: source})
	if err != nil {
		return err
	}
	if handled, err := a.lsInsideDisk(r, si, sub, long); handled { // IMAGE/pN/PATH (ls_disk.go)
		return err
	}
	prefix := ""
	if sub != "" {
		prefix = path.Clean("/" + sub)
	}
	listing := lsListing{Snapshot: si.ID.String(), Disks: []lsDisk{}, Entries: []lsEntry{}}
	for _, d := range si.Snapshot.Disks {
		if a.jsonOut {
			listing.Disks = append(listing.Disks, lsDisk{d.Name, d.Path, d.Device, d.Size, d.Allocated, d.Format})
		} else {
			fmt.Fprintf(a.stdout, "disk %-12s %10s (allocated %s) %s %s\n", d.Name, humanBytes(d.Size), humanBytes(d.Allocated), d.Device, d.Path)
		}
	}
	if si.Snapshot.Tree != nil {
		err = tree.List(a.ctx, r, *si.Snapshot.Tree, func(p string, n *repo.Node) error {
			if prefix != "" && p != prefix && !strings.HasPrefix(p, prefix+"/") {
				return nil
			}
			switch {
			case a.jsonOut:
				listing.Entries = append(listing.Entries, lsEntry{p, n.Type, n.Size, os.FileMode(n.Mode).String(), n.ModTime})
			case long:
				fmt.Fprintf(a.stdout, "%s %10d %s %s\n", os.FileMode(n.Mode), n.Size, n.ModTime.Local().Format("2006-01-02 15:04"), p)
			default:
				fmt.Fprintln(a.stdout, p)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if a.jsonOut {
		a.printJSON(listing)
	}
	return nil
}

// lsListing is what `ls --json` prints (docs/json.md).
type lsListing struct {
	Snapshot string    `json:"snapshot"`
	Disks    []lsDisk  `json:"disks"`
	Entries  []lsEntry `json:"entries"`
}

type lsDisk struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	Device    string `json:"device,omitempty"`
	Size      int64  `json:"size"`
	Allocated int64  `json:"allocated"`
	Format    string `json:"format,omitempty"`
}

type lsEntry struct {
	Path  string    `json:"path"`
	Type  string    `json:"type"`
	Size  uint64    `json:"size"`
	Mode  string    `json:"mode"`
	MTime time.Time `json:"mtime"`
}
