package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/snapferry/snapferry/images/repo"
)

func runSnapshots(a *app, args []string) int {
	repoFlag := a.addRepoFlag()
	host := a.flags.String("host-filter", "", "only snapshots of this host")
	source := a.flags.String("source", "", "only snapshots of this source (VM name, path)")
	tag := a.flags.String("tag", "", "only snapshots with this tag")
	r, code := a.openRepoOnly(args, repoFlag, false)
	if r == nil {
		return code
	}
	defer r.Close()
	list, err := r.ListSnapshots(a.ctx, repo.SnapshotFilter{Host: *host, Source: *source, Tag: *tag})
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		out := make([]map[string]any, 0, len(list))
		for _, s := range list {
			out = append(out, map[string]any{"id": s.ID, "snapshot": s.Snapshot})
		}
		a.printJSON(out)
		return exitOK
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
	fmt.Fprintf(a.stdout, "%d snapshots\n", len(list))
	return exitOK
}
