package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/transfer/ratelimit"
	"github.com/snapferry/snapferry/transfer/replica"
)

// smallFile is the size under which a replicated file is sent whole and replaced atomically;
// larger files are disks, updated in place block by block behind the far side's undo journal.
const smallFile = 1 << 20

// runReplica is `snapferry replica PATH... --to=ssh://host/path`: keep a ready-to-use copy of
// image files or folders on the far side, sending only changed blocks. Each PATH becomes
// <path>/<base name of PATH> there.
func newReplicaCmd(a *app) *cobra.Command {
	var o replicaOptions
	c := &cobra.Command{
		Use:   "replica (PATH... | --vm=NAMES) --to=ssh://[user@]host[:port]/path [options]",
		Short: "keep a ready-to-run copy on another host, sending changed blocks",
		Long: "Replica keeps a ready-to-use copy of image files, folders or VMs on another host, sending only\n" +
			"the blocks that changed since the last run. Each PATH becomes <path>/<base name of PATH> there;\n" +
			"each VM a folder named like it. The far side keeps an undo journal, so an interrupted run\n" +
			"leaves the previous replica intact.",
		Example: "  snapferry replica /srv/images/db.img --to=ssh://backup@dr-host/replicas\n" +
			"  snapferry replica --vm=web01,db01 --to=ssh://root@esxi02/vmfs/volumes/ds2/replicas --bwlimit=20M",
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error { return a.replica(c.Flags(), args, o) },
	}
	fs := c.Flags()
	fs.StringVar(&o.to, "to", "", "ssh://[user@]host[:port]/path of the replica root")
	fs.StringVar(&o.vms, "vm", "", "VMs to replicate: NAMES|IDS|all|running")
	fs.StringVar(&o.bwlimit, "bwlimit", "", "limit the transfer rate, e.g. 20M (bytes per second)")
	o.vf = addReplicaVMFlags(a, fs)
	fs.StringVar(&o.comp, "compression", "", compressionUsage("how to compress changed blocks on the link"))
	a.addOriginFlag(fs, &o.origin)
	a.addSSHFlags(fs)
	a.addHostFlag(c)
	return c
}

type replicaOptions struct {
	to, vms, bwlimit, origin, comp string
	vf                             *replicaVMFlags
}

func (a *app) replica(fs *pflag.FlagSet, pos []string, o replicaOptions) error {
	to, vms, bw, vf, origin := &o.to, &o.vms, &o.bwlimit, o.vf, o.origin
	a.createStore = true
	chosen, err := compressionChoice(o.comp)
	if err != nil {
		return err
	}
	a.compression = chosen
	if *vms != "" && len(pos) > 0 {
		return usagef("give either PATH... or --vm, not both (run two replicas)")
	}
	if *vms == "" && len(pos) == 0 {
		return usagef("nothing to replicate: give PATH... or --vm=NAMES|all|running")
	}
	if !strings.HasPrefix(*to, "ssh://") {
		return usagef("--to=%q: a replica needs ssh://[user@]host[:port]/path (the far side runs snapferry serve)", *to)
	}
	if *bw != "" {
		bps, err := ratelimit.ParseRate(*bw)
		if err != nil {
			return usagef("--bwlimit=%q: %v", *bw, err)
		}
		a.bwlimit = bps
	}
	if *vms != "" {
		return a.replicaVMs(*vms, *to, origin, vf)
	}
	if err := vmOnlyFlags(fs); err != nil {
		return err
	}
	sets := map[string][]replica.File{}
	var order []string
	for _, p := range pos {
		name, files, err := replicaFiles(p)
		if err != nil {
			return err
		}
		if _, dup := sets[name]; dup {
			return usagef("two PATHs are both named %q on the far side; replicate them separately", name)
		}
		sets[name], order = files, append(order, name)
	}
	job, err := a.beginJob("replica", origin, nil, pos)
	if err != nil {
		return err
	}
	items, err := a.pushReplicas(*to, order, sets)
	if a.jsonOut {
		a.printBackupResult(&backupResult{items: items})
	}
	return a.endJob(job, err, items)
}

func (a *app) pushReplicas(to string, order []string, sets map[string][]replica.File) ([]backupItem, error) {
	sess, _, closeLink, err := a.replicaLink(to)
	if err != nil {
		return nil, err
	}
	defer closeLink()
	var items []backupItem
	for _, name := range order {
		start := time.Now()
		st, err := replica.Push(a.ctx, sess, name, sets[name], replica.Options{Compression: a.compression})
		if err != nil {
			return items, fmt.Errorf("replica %s to %s: %w", name, to, err)
		}
		it := replicaItem(name, st, time.Since(start))
		items = append(items, it)
		a.printReplica(it, st)
	}
	return items, nil
}

// replicaFiles lists what one PATH replicates: a file is one entry, a folder every regular file
// below it (relative names). Files of a megabyte or more are disks.
func replicaFiles(path string) (string, []replica.File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, usagef("path %q: %v", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", nil, usagef("cannot replicate %s: %v (check the path)", path, err)
	}
	name := filepath.Base(abs)
	if !fi.IsDir() {
		return name, []replica.File{{Name: name, Source: abs, Disk: fi.Size() >= smallFile}}, nil
	}
	var files []replica.File
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(abs, p)
		files = append(files, replica.File{Name: rel, Source: p, Disk: info.Size() >= smallFile})
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("list %s: %w", path, err)
	}
	return name, files, nil
}
