package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/ratelimit"
	"github.com/snapferry/snapferry/transfer/remotestore"
	"github.com/snapferry/snapferry/transfer/replica"
)

// smallFile is the size under which a replicated file is sent whole and replaced atomically;
// larger files are disks, updated in place block by block behind the far side's undo journal.
const smallFile = 1 << 20

// runReplica is `snapferry replica PATH... --to=ssh://host/path`: keep a ready-to-use copy of
// image files or folders on the far side, sending only changed blocks. Each PATH becomes
// <path>/<base name of PATH> there.
func runReplica(a *app, args []string) int {
	to := a.flags.String("to", "", "ssh://[user@]host[:port]/path of the replica root")
	vms := a.flags.String("vm", "", "VMs to replicate: NAMES|IDS|all|running (replica_vm.go)")
	bw := a.flags.String("bwlimit", "", "limit the transfer rate, e.g. 20M (bytes per second)")
	vf := addReplicaVMFlags(a)
	comp := a.addCompressionFlag("how to compress changed blocks on the link")
	var origin string
	a.addOriginFlag(&origin)
	a.addSSHFlags()
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if *vms != "" && len(pos) > 0 {
		return a.fail(usagef("give either PATH... or --vm, not both (run two replicas)"))
	}
	if *vms == "" && len(pos) == 0 {
		return a.fail(usagef("nothing to replicate: give PATH... or --vm=NAMES|all|running"))
	}
	if !strings.HasPrefix(*to, "ssh://") {
		return a.fail(usagef("--to=%q: a replica needs ssh://[user@]host[:port]/path (the far side runs snapferry serve)", *to))
	}
	chosen, err := compressionChoice(*comp)
	if err != nil {
		return a.fail(err)
	}
	a.compression = chosen
	if *bw != "" {
		bps, err := ratelimit.ParseRate(*bw)
		if err != nil {
			return a.fail(usagef("--bwlimit=%q: %v", *bw, err))
		}
		a.bwlimit = bps
	}
	if *vms != "" {
		return a.replicaVMs(*vms, *to, origin, vf)
	}
	if err := vmOnlyFlags(a); err != nil {
		return a.fail(err)
	}
	sets := map[string][]replica.File{}
	var order []string
	for _, p := range pos {
		name, files, err := replicaFiles(p)
		if err != nil {
			return a.fail(err)
		}
		if _, dup := sets[name]; dup {
			return a.fail(usagef("two PATHs are both named %q on the far side; replicate them separately", name))
		}
		sets[name], order = files, append(order, name)
	}
	job, err := a.beginJob("replica", origin, nil, pos)
	if err != nil {
		return a.fail(err)
	}
	items, err := a.pushReplicas(*to, order, sets)
	code = a.endJob(job, err, items)
	if err != nil {
		a.fail(err)
	}
	return code
}

func (a *app) pushReplicas(to string, order []string, sets map[string][]replica.File) ([]backupItem, error) {
	sess, closeLink, err := a.replicaLink(to)
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

// unwrapRemote finds the wire client below the store wrappers (link owner, rate limit).
func unwrapRemote(be store.Backend) (*remotestore.Client, bool) {
	for {
		switch b := be.(type) {
		case *remotestore.Client:
			return b, true
		case interface{ Unwrap() store.Backend }:
			be = b.Unwrap()
		default:
			return nil, false
		}
	}
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
