package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

func newSnapshotsCmd(a *app) *cobra.Command {
	var repoFlag *string
	var filter repo.SnapshotFilter
	c := &cobra.Command{
		Use:   "snapshots --repo=REPO [options]",
		Short: "list the snapshots of a repository",
		Long: "Snapshots lists the snapshots in REPO, oldest first: id, time, host, kind (image, files, vm),\n" +
			"source, size and what the run added. The filters narrow the list.",
		Example: "  snapferry snapshots --repo=/backup/repo\n  snapferry snapshots --repo=/backup/repo --source=web01 --json",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.withRepo(*repoFlag, false, func(r *repo.Repository) error {
				return a.listSnapshots(r, filter)
			})
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	c.Flags().StringVar(&filter.Host, "host-filter", "", "only snapshots of this host")
	c.Flags().StringVar(&filter.Source, "source", "", "only snapshots of this source (VM name, path)")
	c.Flags().StringVar(&filter.Tag, "tag", "", "only snapshots with this tag")
	a.addHostFlag(c)
	return c
}

func (a *app) listSnapshots(r *repo.Repository, filter repo.SnapshotFilter) error {
	list, err := r.ListSnapshots(a.ctx, filter)
	if err != nil {
		return err
	}
	if a.jsonOut {
		out := make([]map[string]any, 0, len(list))
		for _, s := range list {
			out = append(out, map[string]any{"id": s.ID, "snapshot": s.Snapshot})
		}
		a.printJSON(out)
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tHOST\tKIND\tSOURCE\tSIZE\tADDED\tTAGS")
	for _, s := range list {
		sn := s.Snapshot
		size := "-" // a files snapshot from before sizes were recorded
		if n, ok := sn.LogicalSize(); ok {
			size = humanBytes(n)
		}
		flag := ""
		if sn.Partial {
			flag = " (partial)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s%s\t%s\t%s\t%s\n", s.ID.Short(), sn.Time.Local().Format("2006-01-02 15:04:05"),
			sn.Host, sn.Kind, sn.Source, flag, size, humanBytes(sn.Stats.BytesStored), strings.Join(sn.Tags, ","))
	}
	tw.Flush()
	fmt.Fprintln(a.stdout, plural(len(list), "snapshot"))
	return nil
}
