package repo

import (
	"context"
	"fmt"
	"slices"
)

// CopyOptions choose the snapshots Copy sends.
type CopyOptions struct {
	Filter SnapshotFilter
	// Latest, when positive, copies only the newest Latest matching snapshots of each source
	// (host, kind and source), the way a 3-2-1 job keeps the off-site copy current.
	Latest int
	// Progress, if set, is called after each snapshot.
	Progress func(CopyProgress)
}

// CopyProgress reports one snapshot handled by Copy.
type CopyProgress struct {
	Source   SnapshotInfo
	Target   ID   // the copy's id in the target (zero when skipped)
	Existing bool // the target had this snapshot already
}

// CopyReport counts what Copy did.
type CopyReport struct {
	Snapshots int `json:"snapshots"` // copied now
	Existing  int `json:"existing"`  // already in the target (an earlier, maybe killed, run copied them)
	// BlobsSent are blobs the target lacked; BlobsPresent the ones it had. BytesSent is their
	// plaintext.
	BlobsSent    int64 `json:"blobs_sent"`
	BlobsPresent int64 `json:"blobs_present"`
	BytesSent    int64 `json:"bytes_sent"`
	// Reencoded is set when the repositories hash blob ids differently (different keys, or one
	// encrypted): every tree and block map was rewritten with the target's ids.
	Reencoded bool `json:"reencoded"`
}

// Copy sends snapshots of src to dst: only the blobs dst lacks, each snapshot committed after all
// it names (packs, index, snapshot: the crash-safety order), so a killed copy loses nothing and
// the next run sends only what is still missing and skips the snapshots already there. A
// snapshot counts as there when dst has one with the same time, host, kind and source.
//
// Blobs move as plaintext: dst compresses and encrypts them with its own keys. When the two
// repositories compute blob ids differently (their id keys differ), every tree and block map is
// rewritten with dst's ids; patch blobs are stored whole in dst. The caller holds a shared lock
// on both repositories (prune then waits) and dst is opened for writing.
func Copy(ctx context.Context, src, dst *Repository, o CopyOptions) (*CopyReport, error) {
	all, err := src.ListSnapshots(ctx, o.Filter)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	pick := latestPerSource(all, o.Latest)
	have, err := dst.ListSnapshots(ctx, SnapshotFilter{})
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	probe := []byte("snapferry copy: do both repositories name blobs alike?")
	c := &copier{src: src, dst: dst, rep: &CopyReport{}, ids: map[ID]ID{}}
	c.rep.Reencoded = src.BlobID(probe) != dst.BlobID(probe)
	for _, si := range pick {
		if err := ctx.Err(); err != nil {
			return c.rep, err
		}
		if slices.ContainsFunc(have, func(h SnapshotInfo) bool { return sameSnapshot(h.Snapshot, si.Snapshot) }) {
			c.rep.Existing++
			if o.Progress != nil {
				o.Progress(CopyProgress{Source: si, Existing: true})
			}
			continue
		}
		id, err := c.snapshot(ctx, si.Snapshot)
		if err != nil {
			return c.rep, fmt.Errorf("copy snapshot %s: %w", si.ID.Short(), err)
		}
		c.rep.Snapshots++
		if o.Progress != nil {
			o.Progress(CopyProgress{Source: si, Target: id})
		}
	}
	return c.rep, nil
}

// latestPerSource keeps the newest n snapshots of each host/kind/source (all when n <= 0), oldest
// first: a copy killed midway has then sent the older ones, which the newer share blobs with.
func latestPerSource(all []SnapshotInfo, n int) []SnapshotInfo {
	sorted := slices.Clone(all)
	slices.SortStableFunc(sorted, func(a, b SnapshotInfo) int { return b.Snapshot.Time.Compare(a.Snapshot.Time) })
	count := map[[3]string]int{}
	var out []SnapshotInfo
	for _, si := range sorted {
		k := [3]string{si.Snapshot.Host, si.Snapshot.Kind, si.Snapshot.Source}
		if n > 0 && count[k] >= n {
			continue
		}
		count[k]++
		out = append(out, si)
	}
	slices.Reverse(out)
	return out
}

func sameSnapshot(a, b *Snapshot) bool {
	return a.Time.Equal(b.Time) && a.Host == b.Host && a.Kind == b.Kind && a.Source == b.Source
}

// copier carries one Copy: ids maps source blob ids to target ids when they differ.
type copier struct {
	src, dst *Repository
	rep      *CopyReport
	ids      map[ID]ID
}

func (c *copier) snapshot(ctx context.Context, sn *Snapshot) (ID, error) {
	out := *sn
	out.Parent = nil // the parent's id means nothing in the target
	out.Disks = slices.Clone(sn.Disks)
	for i := range out.Disks {
		out.Disks[i].Map = slices.Clone(sn.Disks[i].Map)
		for j, chunk := range out.Disks[i].Map {
			id, err := c.blockMap(ctx, chunk)
			if err != nil {
				return ID{}, fmt.Errorf("disk %s: %w", out.Disks[i].Name, err)
			}
			out.Disks[i].Map[j] = id
		}
	}
	if sn.Tree != nil {
		id, err := c.tree(ctx, *sn.Tree)
		if err != nil {
			return ID{}, err
		}
		out.Tree = &id
	}
	return c.dst.SaveSnapshot(ctx, &out)
}

// blockMap copies one block-map chunk and the blocks it names; it returns the chunk's id in dst.
func (c *copier) blockMap(ctx context.Context, id ID) (ID, error) {
	raw, err := c.src.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		return ID{}, err
	}
	var chunk BlockMapChunk
	if err := chunk.UnmarshalBinary(raw); err != nil {
		return ID{}, fmt.Errorf("block map %s: %v: %w", id.Short(), err, ErrCorrupt)
	}
	if err := c.dataBlobs(ctx, chunk.IDs); err != nil {
		return ID{}, err
	}
	if !c.rep.Reencoded {
		return id, c.save(ctx, TreeBlob, id, raw)
	}
	for i, b := range chunk.IDs {
		if !b.IsZero() {
			chunk.IDs[i] = c.ids[b]
		}
	}
	enc, err := chunk.MarshalBinary()
	if err != nil {
		return ID{}, err
	}
	nid := c.dst.BlobID(enc)
	return nid, c.save(ctx, TreeBlob, nid, enc)
}

// tree copies a directory tree, subtrees and file contents first; it returns its id in dst.
func (c *copier) tree(ctx context.Context, id ID) (ID, error) {
	if nid, ok := c.ids[id]; ok {
		return nid, nil
	}
	raw, err := c.src.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		return ID{}, err
	}
	t, err := UnmarshalTree(raw)
	if err != nil {
		return ID{}, fmt.Errorf("tree %s: %v: %w", id.Short(), err, ErrCorrupt)
	}
	var content []ID
	for _, n := range t.Nodes {
		content = append(content, n.Content...)
	}
	if err := c.dataBlobs(ctx, content); err != nil {
		return ID{}, err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Subtree != nil {
			sid, err := c.tree(ctx, *n.Subtree)
			if err != nil {
				return ID{}, err
			}
			n.Subtree = &sid
		}
		if c.rep.Reencoded {
			for j, b := range n.Content {
				n.Content[j] = c.ids[b]
			}
		}
	}
	nid, data := id, raw
	if c.rep.Reencoded {
		if data, err = t.Marshal(); err != nil {
			return ID{}, err
		}
		nid = c.dst.BlobID(data)
	}
	c.ids[id] = nid
	return nid, c.save(ctx, TreeBlob, nid, data)
}

func (c *copier) save(ctx context.Context, t BlobType, id ID, data []byte) error {
	added, err := c.dst.SaveBlob(ctx, t, id, data)
	if err != nil {
		return err
	}
	if added {
		c.rep.BlobsSent++
		c.rep.BytesSent += int64(len(data))
	} else {
		c.rep.BlobsPresent++
	}
	return nil
}

// dataBlobs copies the data blobs of ids that dst lacks (zero ids are holes), read in batches so
// blobs side by side in a source pack cost one request. With re-encoding, each blob's target id
// is learned from its plaintext, so blobs already mapped this run are not read again.
func (c *copier) dataBlobs(ctx context.Context, ids []ID) error {
	var want []ID
	seen := map[ID]bool{}
	for _, id := range ids {
		if id.IsZero() || seen[id] {
			continue
		}
		seen[id] = true
		if c.rep.Reencoded {
			if _, ok := c.ids[id]; ok {
				continue
			}
		} else if c.dst.HasBlob(DataBlob, id) {
			c.rep.BlobsPresent++
			continue
		}
		want = append(want, id)
	}
	return c.src.LoadBlobs(ctx, DataBlob, want, func(i int, data []byte, err error) error {
		if err != nil {
			return err
		}
		nid := want[i]
		if c.rep.Reencoded {
			nid = c.dst.BlobID(data)
			c.ids[want[i]] = nid
		}
		return c.save(ctx, DataBlob, nid, data)
	})
}
