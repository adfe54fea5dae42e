package repo

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/snapferry/snapferry/images/blobhash"
	"github.com/snapferry/snapferry/images/store"
)

// readData is check --read-data: it re-reads every pack the store holds, reports the ones that
// do not verify as damaged, and marks their bad blobs in the index so backups store them again
// (markDamaged). Without ReadData it does nothing.
func (c *checker) readData(ctx context.Context) error {
	if !c.o.ReadData {
		return nil
	}
	ids := sortedIDs(c.present)
	errs, bads, err := c.readPacks(ctx, ids)
	if err != nil {
		return err
	}
	badOf := map[ID][]packBlob{}
	for i, err := range errs {
		if err != nil {
			c.rep.fail("pack", ids[i].String(), "%v", err)
			c.damaged[ids[i]] = true
			badOf[ids[i]] = bads[i]
		}
	}
	c.warnStaleDamageMarks()
	return c.r.markDamaged(ctx, c.idx, c.blobsOf, c.damaged, badOf, c.rep)
}

// readPacks reads the packs ids in parallel (readPack) and returns, per pack, why it does not
// verify (nil when it does) and its blobs that did not verify. The error is for failing to read
// at all (a cancelled context).
func (c *checker) readPacks(ctx context.Context, ids []ID) ([]error, [][]packBlob, error) {
	var total int64
	for _, size := range c.present {
		total += size
	}
	c.prog.Start("read packs", total)
	defer c.prog.Done()
	errs := make([]error, len(ids))
	bads := make([][]packBlob, len(ids))
	var mu sync.Mutex
	err := forEachParallel(ctx, storeWorkers, len(ids), func(ctx context.Context, i int) error {
		packs, blobs, bad, err := c.r.readPack(ctx, ids[i], c.present[ids[i]], c.blobsOf[ids[i]])
		c.prog.Add(c.present[ids[i]])
		errs[i], bads[i] = err, bad
		mu.Lock()
		c.rep.PacksRead += packs
		c.rep.BlobsRead += blobs
		mu.Unlock()
		return ctx.Err()
	})
	return errs, bads, err
}

// warnStaleDamageMarks names copies an earlier check --read-data marked damaged whose pack reads
// well now (a store that failed for a while): only repair clears such a mark.
func (c *checker) warnStaleDamageMarks() {
	idx := c.idx
	for _, se := range idx.base {
		if se.e.comp&compDamaged != 0 && !c.damaged[idx.packs[se.e.pack]] {
			c.rep.warn("blob", se.id.String(), "marked damaged by an earlier check --read-data, but pack %s reads well now; "+
				"`snapferry repair` clears the mark", idx.packs[se.e.pack].Short())
		}
	}
}

// markDamaged records what check --read-data found: one index file that lists every damaged
// indexed pack again, its bad blobs (all of them when the header is unreadable or the pack is
// missing) flagged blobFlagDamaged. From then on readers try other copies first, backups store
// such blobs again instead of deduplicating against them, and repair knows what to remove.
// Copies already marked are not marked again; an index file only adds, so a shared lock is
// enough.
func (r *Repository) markDamaged(ctx context.Context, idx *index, blobsOf map[ID][]packBlob, damaged map[ID]bool,
	badOf map[ID][]packBlob, rep *CheckReport) error {
	var packs []indexedPack
	ids := map[ID]bool{}
	for _, pid := range sortedIDs(damaged) {
		list, ok := blobsOf[pid]
		if !ok {
			continue // not indexed: nothing deduplicates against it
		}
		bad := badOf[pid]
		num := idx.packNum[pid]
		marked := slices.Clone(list)
		fresh := false
		for i, b := range marked {
			isBad := bad == nil || slices.ContainsFunc(bad, func(x packBlob) bool { return x.Offset == b.Offset && x.ID == b.ID })
			if !isBad {
				continue
			}
			marked[i].Flags |= blobFlagDamaged
			ids[b.ID] = true
			if !idx.copyDamaged(b.ID, num, b.Offset) {
				fresh = true
				rep.BlobsMarked++
			}
		}
		if fresh {
			packs = append(packs, indexedPack{ID: pid, Blobs: marked})
		}
	}
	rep.DamagedBlobs = sortedIDs(ids)
	if len(packs) == 0 {
		return nil
	}
	_, err := r.saveIndexFile(ctx, packs)
	return err
}

// readPack streams one pack: its bytes must hash to its name, its header must decode and agree
// with the index, and every blob must verify. Only one blob is in memory at a time. It returns
// how many packs (0 or 1) and blobs it read to the end, and the blobs that did not verify when
// the header could be read (nil otherwise: then the whole pack is suspect).
func (r *Repository) readPack(ctx context.Context, id ID, size int64, indexed []packBlob) (packs, good int, badBlobs []packBlob, err error) {
	blobs, err := readPackHeader(ctx, r.be, id, size, r.crypt)
	if err != nil {
		return 0, 0, nil, err
	}
	if indexed != nil && !sameBlobs(blobs, indexed) {
		return 0, 0, nil, fmt.Errorf("pack header and index disagree about its blobs: %w", ErrCorrupt)
	}
	rd, err := r.be.Load(ctx, store.Handle{Kind: store.KindData, Name: id.String()}, 0, 0)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("load: %w", err)
	}
	defer rd.Close()
	h := blobhash.New()
	tee := io.TeeReader(rd, h)
	var stored, plain []byte
	var bad []string
	for _, b := range blobs {
		stored = grow(stored, int(b.Stored))
		if _, err := io.ReadFull(tee, stored); err != nil {
			return 0, good, nil, fmt.Errorf("read blob %s: %w", b.ID.Short(), err)
		}
		if plain, err = r.decodeBlob(b.packEntry, stored, plain); err != nil {
			bad = append(bad, fmt.Sprintf("blob %s at offset %d: %v", b.ID.Short(), b.Offset, err))
			badBlobs = append(badBlobs, b)
			continue
		}
		good++
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return 0, good, nil, fmt.Errorf("read header: %w", err)
	}
	if len(bad) > 0 {
		return 1, good, badBlobs, fmt.Errorf("%d blobs are damaged (%s): %w", len(bad), strings.Join(bad, "; "), ErrCorrupt)
	}
	var sum ID
	h.Sum(sum[:0])
	if sum != id {
		return 1, good, nil, fmt.Errorf("content hashes to %s, not its name: %w", sum.Short(), ErrCorrupt)
	}
	return 1, good, nil, nil
}
