package diskfiles

import (
	"io/fs"
	"path"
	"time"

	"github.com/snapferry/snapferry/images/guestfs"
)

// Item is one line of a listing: a partition or logical volume, or an entry of a file system.
type Item struct {
	Path    string      `json:"path"`
	Kind    string      `json:"type"` // "partition", "volume", "dir", "file", "symlink", "other"
	Size    int64       `json:"size"`
	Mode    fs.FileMode `json:"-"`
	ModeStr string      `json:"mode,omitempty"`
	ModTime time.Time   `json:"mtime,omitzero"`
	Target  string      `json:"target,omitempty"`
	// Partitions and volumes only.
	PartType string `json:"part_type,omitempty"`
	FSType   string `json:"fs_type,omitempty"`
	Label    string `json:"label,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// List calls fn for what t names: the partitions (and logical volumes) of the disk, or the
// entries of a folder inside a file system (recursively when recursive), or one entry.
// prefix is how paths are shown (the snapshot path of t).
func List(t *Target, prefix string, recursive bool, fn func(Item) error) error {
	if t.Volume == nil {
		for _, v := range t.Guest.Volumes {
			if err := fn(volumeItem(path.Join(prefix, v.Name), v)); err != nil {
				return err
			}
			for _, lv := range v.LVs {
				if err := fn(volumeItem(path.Join(prefix, v.Name, lv.Name), lv)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if t.Volume.FSType == "lvm2" && t.Inner == "." {
		for _, lv := range t.Volume.LVs {
			if err := fn(volumeItem(path.Join(prefix, lv.Name), lv)); err != nil {
				return err
			}
		}
		return nil
	}
	f, err := t.Volume.OpenFS()
	if err != nil {
		return err
	}
	e, err := f.Lstat(t.Inner)
	if err != nil {
		return err
	}
	if !e.Mode.IsDir() {
		return fn(entryItem(prefix, e))
	}
	var walk func(dir, shown string) error
	walk = func(dir, shown string) error {
		es, err := f.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range es {
			if err := fn(entryItem(path.Join(shown, e.Name), e)); err != nil {
				return err
			}
			if recursive && e.Mode.IsDir() {
				if err := walk(path.Join(dir, e.Name), path.Join(shown, e.Name)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(t.Inner, prefix)
}

func volumeItem(p string, v *guestfs.Volume) Item {
	kind := "partition"
	if v.Scheme == "lvm" {
		kind = "volume"
	}
	return Item{Path: p, Kind: kind, Size: v.Size, PartType: v.Type, FSType: v.FSType, Label: v.Label, Problem: v.Problem}
}

func entryItem(p string, e guestfs.Entry) Item {
	kind := "other"
	switch {
	case e.Mode.IsDir():
		kind = "dir"
	case e.Mode.IsRegular():
		kind = "file"
	case e.Mode&fs.ModeSymlink != 0:
		kind = "symlink"
	}
	return Item{Path: p, Kind: kind, Size: e.Size, Mode: e.Mode, ModeStr: e.Mode.String(), ModTime: e.ModTime, Target: e.Target}
}
