package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/snapferry/snapferry/images/store"
)

// Prune's rule for duplicates: a pack is deleted, or repacked without some of its blobs, only if
// every blob snapshots still need that it drops has a copy prune keeps and has just read and
// verified (decrypted, decompressed, hashed against the id; a patch rebuilt from its base). A
// client that may only add files (an append-only key) can upload a pack of fake copies of
// stored blobs and an index naming it; whatever order the index files load in, the fake copy
// never verifies, so the genuine pack stays and the fake one goes. Index entries are claims of
// whoever wrote them: for every pack that loses blobs, and for every pack two index files
// describe differently, the pack's own header says what it holds.

// settlePlans sorts the packs into kept, removed and repacked ones, after reading the header of
// every pack that is to lose blobs and verifying the kept copy of every needed blob whose other
// copy is to be dropped. A kept copy that does not verify is replaced by one that does; a blob
// with no verified copy keeps all of them (reported in DamagedBlobs). Each finding can move
// blobs between packs, so the packs are sorted again until nothing changes.
func (r *Repository) settlePlans(ctx context.Context, plans []*packPlan, used []uint64, threshold float64,
	rep *PruneReport) (keep, remove, repack []*packPlan, err error) {
	r.mu.Lock()
	idx := r.idx
	r.mu.Unlock()
	s := &settler{r: r, idx: idx, plans: plans, used: used, rep: rep, verified: map[ID]bool{}, keepAll: map[ID]bool{}}
	if err := s.readConflictingHeaders(ctx); err != nil {
		return nil, nil, nil, err
	}
	for {
		keep, remove, repack = classifyPlans(plans, threshold)
		dropping := slices.Concat(remove, repack)
		changed, err := s.readHeaders(ctx, dropping)
		if err != nil {
			return nil, nil, nil, err
		}
		if !changed {
			if changed, err = s.verifyKeptCopies(ctx, dropping); err != nil {
				return nil, nil, nil, err
			}
			if !changed {
				break
			}
		}
		s.markAll()
	}
	s.countBlobs()
	return keep, remove, repack, nil
}

// settler is settlePlans' state between rounds.
type settler struct {
	r     *Repository
	idx   *index
	plans []*packPlan
	used  []uint64
	rep   *PruneReport
	// verified: blobs whose kept copy was read and verified; keepAll: blobs with no copy that
	// verifies, of which every copy is kept.
	verified, keepAll map[ID]bool
}

// markAll computes again which blobs of each pack prune keeps.
func (s *settler) markAll() {
	for _, p := range s.plans {
		p.mark(s.idx, s.used, s.keepAll, s.r.crypt)
	}
}

// readConflictingHeaders lets the header decide what a pack holds when index files describe it
// differently: one of them lies, and prune must not drop a blob because of it.
func (s *settler) readConflictingHeaders(ctx context.Context) error {
	for _, p := range s.plans {
		if p.conflict {
			if err := s.r.readPlanHeader(ctx, p, true); err != nil {
				return err
			}
			p.mark(s.idx, s.used, s.keepAll, s.r.crypt)
		}
	}
	return nil
}

// readHeaders reads the header of each pack in dropping not read yet: what a pack loses is
// decided by what it holds, not by what an index file claims. It reports whether it read any.
func (s *settler) readHeaders(ctx context.Context, dropping []*packPlan) (bool, error) {
	changed := false
	for _, p := range dropping {
		if !p.headerRead {
			if err := s.r.readPlanHeader(ctx, p, false); err != nil {
				return false, err
			}
			changed = true
		}
	}
	return changed, nil
}

// verifyKeptCopies verifies the kept copy of every needed blob that a pack in dropping is about
// to lose, once per blob. It reports whether a finding changed which copy is kept.
func (s *settler) verifyKeptCopies(ctx context.Context, dropping []*packPlan) (bool, error) {
	idx, changed := s.idx, false
	for _, p := range dropping {
		for i, b := range p.blobs {
			pos := idx.find(b.ID)
			if p.used[i] || pos < 0 || s.used[pos/64]&(1<<(pos%64)) == 0 || s.verified[b.ID] || s.keepAll[b.ID] {
				continue
			}
			moved, err := s.r.verifyKeptCopy(ctx, idx, pos, p, b)
			if err != nil {
				return false, err
			}
			if moved == nil {
				s.keepAll[b.ID] = true
				s.rep.DamagedBlobs = append(s.rep.DamagedBlobs, b.ID)
				changed = true
				continue
			}
			s.verified[b.ID] = true
			if *moved != idx.base[pos].e {
				s.r.mu.Lock()
				idx.setPrimary(pos, *moved)
				s.r.mu.Unlock()
				changed = true
			}
		}
	}
	return changed, nil
}

// countBlobs reports how many blobs of the packs prune keeps and drops.
func (s *settler) countBlobs() {
	s.rep.BlobsUsed, s.rep.BlobsUnused = 0, 0
	for _, p := range s.plans {
		for _, u := range p.used {
			if u {
				s.rep.BlobsUsed++
			} else {
				s.rep.BlobsUnused++
			}
		}
	}
}

func classifyPlans(plans []*packPlan, threshold float64) (keep, remove, repack []*packPlan) {
	for _, p := range plans {
		switch {
		case p.usedBytes == 0:
			remove = append(remove, p)
		case float64(p.totalBytes-p.usedBytes) > threshold*float64(p.totalBytes):
			repack = append(repack, p)
		default:
			keep = append(keep, p)
		}
	}
	return keep, remove, repack
}

// readPlanHeader replaces the plan's blob list by the pack's header. A pack that is gone has
// nothing to delete. A header that cannot be read leaves the index's list, except for a pack
// whose index files disagree (strict): then prune cannot tell what the pack holds and stops.
func (r *Repository) readPlanHeader(ctx context.Context, p *packPlan, strict bool) error {
	p.headerRead = true
	fi, err := r.be.Stat(ctx, store.Handle{Kind: store.KindData, Name: p.id.String()})
	if errors.Is(err, store.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pack %s: %w", p.id.Short(), err)
	}
	blobs, err := readPackHeader(ctx, r.be, p.id, fi.Size, r.crypt)
	switch {
	case err == nil:
		p.blobs = blobs
	case strict || !errors.Is(err, ErrCorrupt):
		return fmt.Errorf("pack %s, which index files describe differently: %w; nothing was deleted "+
			"(run `snapferry check --read-data`, then `snapferry repair`)", p.id.Short(), err)
	}
	return nil
}

// verifyKeptCopy reads and verifies the copy of blob b (at base position pos) that the index
// uses, because pack p is about to drop its own copy. If that copy is bad it tries every other
// copy, p's included, and returns the first that verifies; nil if none does. Errors other than
// damage (a store that cannot be reached) stop the prune.
func (r *Repository) verifyKeptCopy(ctx context.Context, idx *index, pos int, p *packPlan, b packBlob) (*indexEntry, error) {
	id := b.ID
	candidates := append([]indexEntry{idx.base[pos].e}, idx.dups[id]...)
	if num, ok := idx.packNum[p.id]; ok {
		own := entryOf(num, b)
		if !slices.Contains(candidates, own) {
			candidates = append(candidates, own)
		}
	}
	// Whole copies first: a patch's base must be whole, and the blob may be one.
	slices.SortStableFunc(candidates, func(a, b indexEntry) int {
		return int(a.comp&compPatch) - int(b.comp&compPatch)
	})
	for _, c := range candidates {
		_, err := r.loadCopy(ctx, b.Type, id, c, idx.packs[c.pack], nil)
		if err == nil {
			return &c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !isDamage(err) {
			return nil, fmt.Errorf("verify blob %s before deleting a copy of it: %w; nothing was deleted", id.Short(), err)
		}
	}
	return nil, nil
}

// isDamage tells errors that say a copy is bad (changed, missing, a broken patch) from errors
// that say nothing about it (network, permissions).
func isDamage(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, store.ErrNotExist) || errors.Is(err, ErrBlobNotFound)
}
