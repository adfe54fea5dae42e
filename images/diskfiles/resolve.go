package diskfiles

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/guestfs"
	"github.com/snapferry/snapferry/images/repo"
)

// Target is what a snapshot path inside a disk names.
type Target struct {
	Disk   repo.Disk
	Reader *disk.Reader
	Guest  *guestfs.Disk
	Volume *guestfs.Volume // nil: the disk itself (list its partitions)
	Inner  string          // the path inside Volume's file system ("." for its root)
}

// Match finds the disk of sn that sub names (its name, its source path with or without the
// leading slash) and returns it with the rest of the path. ok is false when sub names no disk,
// so the caller treats it as a path in the snapshot's file tree.
func Match(sn *repo.Snapshot, sub string) (d repo.Disk, rest string, ok bool) {
	s := strings.Trim(path.Clean("/"+sub), "/")
	for _, d := range sn.Disks {
		for _, name := range []string{d.Name, strings.Trim(d.Path, "/")} {
			if name == "" {
				continue
			}
			if s == name {
				return d, "", true
			}
			if strings.HasPrefix(s, name+"/") {
				return d, strings.TrimPrefix(s, name+"/"), true
			}
		}
	}
	return repo.Disk{}, "", false
}

// Open opens d from the repository and resolves rest ("", "p1", "p1/etc", "p2/vg/lv/etc").
func Open(ctx context.Context, bs repo.BlobStore, d repo.Disk, rest string) (*Target, error) {
	rd, err := disk.NewReader(ctx, bs, d, disk.ReaderOptions{})
	if err != nil {
		return nil, err
	}
	gd, err := guestfs.Open(rd, d.Size)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", d.Name, err)
	}
	t := &Target{Disk: d, Reader: rd, Guest: gd, Inner: "."}
	if rest == "" {
		return t, nil
	}
	elems := strings.Split(rest, "/")
	v, used, err := gd.Find(elems)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w; see `snapferry ls SNAPSHOT:%s`", d.Name, err, d.Name)
	}
	t.Volume = v
	if in := strings.Join(elems[used:], "/"); in != "" {
		t.Inner = in
	}
	return t, nil
}
