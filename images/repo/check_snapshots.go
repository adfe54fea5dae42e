package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/snapferry/snapferry/images/store"
)

// noteDuplicates warns when blobs are stored more than once: harmless, but the user should know
// why the repository is larger than its data and that prune settles it.
func (c *checker) noteDuplicates(context.Context) error {
	if n := len(c.idx.dups); n > 0 {
		c.rep.warn("index", "", "%d blobs are stored in more than one pack (backups running at once, an interrupted prune, "+
			"or copies another client added): readers fall back to another copy when one does not verify, and prune "+
			"deletes a copy only after reading and verifying the one it keeps", n)
	}
	return nil
}

// checkPatches reads the header of every indexed patch blob (patches are a small share of the
// blobs, and each is one small read) and reports one whose base is missing from the index or is
// itself a patch. With ReadData every patch is also rebuilt and checked against its id. Patches
// in damaged packs are left to the pack's report, and with ReadData a base in a damaged pack to
// the snapshot walk. It records each readable patch's base and a reason per damaged patch, for
// the snapshot walk.
func (c *checker) checkPatches(ctx context.Context) error {
	r, idx, damaged := c.r, c.idx, c.damaged
	c.patchBase, c.badPatch = map[ID]ID{}, map[ID]string{}
	var buf []byte
	for _, se := range idx.base {
		if se.e.comp&compPatch == 0 || damaged[idx.packs[se.e.pack]] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		id := se.id
		fail := func(format string, a ...any) {
			msg := fmt.Sprintf(format, a...)
			c.rep.fail("blob", id.String(), "patch: %s", msg)
			c.badPatch[id] = msg
		}
		base, err := r.patchBase(ctx, id)
		if err != nil {
			fail("%v", err)
			continue
		}
		c.patchBase[id] = base
		be, ok := idx.lookup(base)
		switch {
		case !ok:
			fail("its base blob %s is not in the index", base.Short())
			continue
		case be.comp&compPatch != 0:
			fail("its base blob %s is itself a patch (a base must be a whole blob)", base.Short())
			continue
		}
		if c.o.ReadData && !damaged[idx.packs[be.pack]] {
			if buf, err = r.LoadBlob(ctx, DataBlob, id, buf); err != nil {
				fail("%v", err)
			}
		}
	}
	return nil
}

// checkSnapshots walks every snapshot and everything it references: what a restore of it would
// need. Trees shared by snapshots are read once.
func (c *checker) checkSnapshots(ctx context.Context) error {
	snaps, err := listIDs(ctx, c.r.be, store.KindSnapshots)
	if err != nil {
		return err
	}
	c.rep.Snapshots = len(snaps)
	seen := map[ID]struct{}{}
	c.prog.Start("check snapshots", -1)
	defer c.prog.Done()
	for _, sid := range snaps {
		c.prog.File(1)
		if err := c.checkSnapshot(ctx, sid, seen); err != nil {
			return err
		}
	}
	return nil
}

// checkSnapshot reports snapshot sid damaged, with up to five reasons, when it cannot be read or
// something it references is missing or has no intact copy. The error is for a walk that could
// not run (a cancelled context).
func (c *checker) checkSnapshot(ctx context.Context, sid ID, seen map[ID]struct{}) error {
	sn, err := c.r.loadListedSnapshot(ctx, sid)
	if err != nil {
		c.rep.fail("snapshot", sid.String(), "%v", err)
		c.rep.DamagedSnapshots = append(c.rep.DamagedSnapshots, sid)
		return nil
	}
	if sn == nil {
		c.rep.Snapshots--
		return nil
	}
	var why []string
	note := func(s string) {
		if len(why) < 5 {
			why = append(why, s)
		}
	}
	err = c.r.walkSnapshot(ctx, sn, seen, refVisitor{
		blob: func(t BlobType, id ID) {
			if problem := c.blobProblem(t, id); problem != "" {
				note(problem)
			}
		},
		fail: func(what string, id ID, err error) {
			if !errors.Is(err, ErrBlobNotFound) { // missing blobs are noted by blob()
				note(fmt.Sprintf("%s (%s): %v", what, id.Short(), err))
			}
		},
	})
	if err != nil {
		return err
	}
	if len(why) > 0 {
		c.rep.fail("snapshot", sid.String(), "%s of %s at %s is damaged: %s", sn.Kind, sn.Source,
			sn.Time.Format("2006-01-02 15:04:05"), strings.Join(why, "; "))
		c.rep.DamagedSnapshots = append(c.rep.DamagedSnapshots, sid)
	}
	return nil
}

// blobProblem says what is wrong with a blob a snapshot needs ("" when nothing is), judged by
// its intact copy if it has one. A blob no index names is also recorded in c.missing:
// judgeUnindexed looks for it in the packs no index names.
func (c *checker) blobProblem(t BlobType, id ID) string {
	idx, damaged := c.idx, c.damaged
	e, ok := intactCopy(idx, id, damaged)
	switch {
	case !ok:
		c.missing[id] = true
		return fmt.Sprintf("%s blob %s is missing", t, id.Short())
	case damaged[idx.packs[e.pack]]:
		return fmt.Sprintf("%s blob %s is in damaged pack %s", t, id.Short(), idx.packs[e.pack].Short())
	case e.comp&compDamaged != 0 && !c.o.ReadData: // with ReadData, this read judges
		return fmt.Sprintf("%s blob %s was found damaged by an earlier check --read-data (run `snapferry repair`)", t, id.Short())
	case c.badPatch[id] != "":
		return fmt.Sprintf("%s blob %s is a damaged patch: %s", t, id.Short(), c.badPatch[id])
	}
	if base, ok := c.patchBase[id]; ok {
		if be, ok := intactCopy(idx, base, damaged); ok && damaged[idx.packs[be.pack]] {
			return fmt.Sprintf("%s blob %s is a patch of blob %s in damaged pack %s", t, id.Short(), base.Short(), idx.packs[be.pack].Short())
		}
	}
	return ""
}

// judgeUnindexed says the right thing about each pack no index names: one that holds blobs
// snapshots need is an error (prune must not delete it; rebuild-index indexes it again), one a
// prune dropped waits for writers that may still use it, others are leftovers of interrupted
// backups (or uploads in progress) that the next backup adopts or prune removes.
func (c *checker) judgeUnindexed(ctx context.Context) error {
	rep := c.rep
	for _, id := range rep.UnindexedPacks {
		var needed []string
		if len(c.missing) > 0 {
			blobs, err := readPackHeader(ctx, c.r.be, id, c.present[id], c.r.crypt)
			if err != nil && !isDamage(err) {
				return err
			}
			for _, b := range blobs {
				if c.missing[b.ID] && len(needed) < 5 {
					needed = append(needed, b.ID.Short())
				}
			}
		}
		switch {
		case len(needed) > 0:
			rep.fail("pack", id.String(), "in no index but holds blobs snapshots need (%s): run `snapferry rebuild-index` "+
				"to index it again; prune deletes nothing until then", strings.Join(needed, ", "))
		case c.dropped[id]:
			rep.warn("pack", id.String(), "dropped from the index by prune (no snapshot needs it); a later prune deletes it "+
				"once no backup that started before then still runs")
		default:
			rep.warn("pack", id.String(), "in no index: left by an interrupted backup, or being written now; the next "+
				"backup adopts it if it is complete, and prune deletes it once no writer that started before it was written still runs")
		}
	}
	return nil
}

// intactCopy returns the copy of id that the index uses, or if its pack is damaged, the first
// other copy in an undamaged pack: a snapshot is damaged only when no copy of a blob is intact.
func intactCopy(idx *index, id ID, damaged map[ID]bool) (indexEntry, bool) {
	e, ok := idx.lookup(id)
	if !ok || !damaged[idx.packs[e.pack]] {
		return e, ok
	}
	for _, d := range idx.dups[id] {
		if !damaged[idx.packs[d.pack]] {
			return d, true
		}
	}
	return e, true
}
