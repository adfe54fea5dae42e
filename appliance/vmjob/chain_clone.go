package vmjob

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/snapferry/snapferry/appliance"
)

// cloneArea is a temporary folder on a datastore for chain clones, removed when the job ends.
type cloneArea struct {
	dir string
}

// openCloneArea picks the datastore for temporary clones: the one named, else the one with the
// most free space that can hold need bytes. Only VMFS and NFS volumes qualify (not OSDATA/vfat).
func openCloneArea(ctx context.Context, h appliance.Host, o *BackupOptions, need int64) (*cloneArea, error) {
	dss, err := h.Datastores(ctx)
	if err != nil {
		return nil, err
	}
	var best *appliance.Datastore
	for i := range dss {
		d := &dss[i]
		if o.WorkDatastore != "" {
			if d.Name == o.WorkDatastore {
				best = d
			}
			continue
		}
		if !d.Mounted || !(d.Type == "VMFS-5" || d.Type == "VMFS-6" || d.Type == "NFS" || d.Type == "NFS41") {
			continue
		}
		if best == nil || d.Free > best.Free {
			best = d
		}
	}
	switch {
	case best == nil && o.WorkDatastore != "":
		return nil, fmt.Errorf("work datastore %q not found on this host", o.WorkDatastore)
	case best == nil || best.Free < need:
		return nil, fmt.Errorf("no datastore has %d bytes free for a temporary clone of the VM's disks; free space, name a datastore for it, or remove the VM's snapshots", need)
	}
	dir := filepath.Join(best.LocalPath, "snapferry-tmp-"+o.JobID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create clone folder on %s: %w", best.Name, err)
	}
	return &cloneArea{dir: dir}, nil
}

// clone copies the disk whose chain starts at descriptor into a thin standalone disk.
func (a *cloneArea) clone(ctx context.Context, h appliance.Host, d appliance.Disk, descriptor string) (string, error) {
	dst := filepath.Join(a.dir, d.Name+".vmdk")
	if err := h.CloneDisk(ctx, descriptor, dst); err != nil {
		return "", err
	}
	return dst, nil
}

func (a *cloneArea) remove() error {
	if a == nil {
		return nil
	}
	if err := os.RemoveAll(a.dir); err != nil {
		return fmt.Errorf("remove temporary clones in %s: %w", a.dir, err)
	}
	return nil
}
