package repo

import (
	"context"
	"testing"
	"time"
)

// A host-state snapshot, saved after the backups of a run, is never what `latest` or an
// unfiltered listing means; asked for by kind it is found, and check walks it.
func TestFilterLeavesOutHostStateUnlessAsked(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	t0 := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	img := backupImage(t, r, "/srv/disk.img", image{blocks: 2, seed: 1}, t0)
	data := []byte("{}\n")
	id := r.BlobID(data)
	if _, err := r.SaveBlob(ctx, DataBlob, id, data); err != nil {
		t.Fatal(err)
	}
	tb, err := (&Tree{Nodes: []Node{{Name: "jobs.json", Type: NodeFile, Mode: 0o600, Size: uint64(len(data)), Content: []ID{id}}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	root := r.BlobID(tb)
	if _, err := r.SaveBlob(ctx, TreeBlob, root, tb); err != nil {
		t.Fatal(err)
	}
	hs, err := r.SaveSnapshot(ctx, &Snapshot{Time: t0.Add(time.Minute), Kind: SnapshotHostState, Source: "state", Tree: &root})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.FindSnapshot(ctx, "latest", SnapshotFilter{}); err != nil || got.ID != img {
		t.Errorf("latest of everything: %v, %v; want the image backup %s", got.ID.Short(), err, img.Short())
	}
	if all, err := r.ListSnapshots(ctx, SnapshotFilter{}); err != nil || len(all) != 1 {
		t.Errorf("unfiltered list: %d snapshots, %v; want the one backup", len(all), err)
	}
	if got, err := r.FindSnapshot(ctx, "latest", SnapshotFilter{Kind: SnapshotHostState}); err != nil || got.ID != hs {
		t.Errorf("latest host state: %v, %v", got.ID.Short(), err)
	}
	// An id names one snapshot whatever its kind: restoring a host-state snapshot by id works.
	if got, err := r.FindSnapshot(ctx, hs.String()[:10], SnapshotFilter{}); err != nil || got.ID != hs {
		t.Errorf("host state by id prefix: %v, %v", got.ID.Short(), err)
	}
	if _, err := r.FindSnapshot(ctx, hs.String(), SnapshotFilter{Kind: SnapshotImage}); err == nil {
		t.Error("a host-state id matched a filter for image snapshots")
	}
	if rep := mustCheck(t, r, true); rep.Snapshots != 2 {
		t.Errorf("check walked %d snapshots, want both", rep.Snapshots)
	}
}
