package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/pipeline"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/writeback"
)

// RestoreOptions tune a restore. The zero value uses one worker per CPU.
type RestoreOptions struct {
	Workers  int // blob-loading goroutines; default 2 per CPU (see defaultWorkers)
	Progress progress.Reporter
	// Overwrite replaces an existing file that differs from the disk; without it Restore keeps
	// the file and returns *overwrite.NotReplaced (package overwrite has the rule).
	Overwrite bool
}

// Restore writes disk d to the file path by package overwrite's rule: an existing file that
// already holds d (Same) is left as it is; one that differs is kept and reported as
// *overwrite.NotReplaced unless opts.Overwrite. The image is written under a temporary name
// beside path (overwrite.PartialName), given d's mode, owner and times, synced and renamed to
// path only when complete; a failed restore removes it, so nothing under path ever looks
// finished while it is not. See RestoreFile for how blocks are written.
func Restore(ctx context.Context, bs repo.BlobStore, d repo.Disk, path string, opts RestoreOptions) error {
	if _, err := os.Lstat(path); err == nil {
		same, err := Same(ctx, bs, d, path)
		if err != nil {
			return fmt.Errorf("restore disk %q: compare with the existing %s: %w", d.Name, path, err)
		}
		if same {
			return nil
		}
		if !opts.Overwrite {
			return &overwrite.NotReplaced{Paths: []string{path}}
		}
	}
	tmp := filepath.Join(filepath.Dir(path), overwrite.PartialName(filepath.Base(path)))
	_ = os.Remove(tmp) // a leftover of a killed run; never written through if it is a symlink
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore disk %q: %w", d.Name, err)
	}
	err = RestoreFile(ctx, bs, d, f, opts)
	if err == nil {
		if err = applyMeta(f, d); err != nil {
			err = fmt.Errorf("restore disk %q: %s: %w", d.Name, tmp, err)
		}
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("restore disk %q: close %s: %w", d.Name, tmp, cerr)
	}
	if err == nil {
		if err = os.Rename(tmp, path); err != nil {
			err = fmt.Errorf("restore disk %q: %w", d.Name, err)
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a rename in dir durable. A failure (a filesystem that refuses fsync on a
// directory) only loses that guarantee: the file itself was synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// writebackEvery is how many bytes a restore writes between two requests to the kernel to start
// writing them out (package writeback): restoring the 1.7 GiB benchmark image kept all of it
// dirty until the fsync, which then took 1.06 of the restore's 3.05 s while the CPUs idled.
const writebackEvery = 64 << 20

// RestoreFile writes disk d into f. A regular file is emptied and set to d.Size, then only
// non-hole blocks are written (and within them only the non-zero 4 KiB pages), so the result
// is at least as sparse as the source. Anything else (a block device) must be at least
// d.Size long and gets holes written as zeros, since old contents would otherwise show
// through. Blocks are loaded and written by parallel workers; f is synced before return.
func RestoreFile(ctx context.Context, bs repo.BlobStore, d repo.Disk, f *os.File, opts RestoreOptions) error {
	if err := checkDisk(d); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	regular, err := prepareTarget(d, f)
	if err != nil {
		return fmt.Errorf("restore disk %q: %w", d.Name, err)
	}
	rep := progress.OrNop(opts.Progress)
	rep.Start(d.Name, d.Size)
	defer rep.Done()
	n := restoreWorkers(bs, opts.Workers)
	defer paceGC(bs, n, d.BlockSize)()
	batches := make(chan restoreBatch, n)
	wb := writeback.Start(int(f.Fd()), writebackEvery, writeback.SyncWrite)
	defer wb.Stop()
	zero := make([]byte, d.BlockSize)
	write := func(index int64, data []byte) error {
		off := index * int64(d.BlockSize)
		var err error
		if regular {
			err = WriteSparse(f, data, off)
		} else {
			_, err = f.WriteAt(data, off)
		}
		if err != nil {
			return fmt.Errorf("restore disk %q: write block %d to %s: %w", d.Name, index, f.Name(), err)
		}
		wb.Wrote(len(data))
		rep.Add(int64(len(data)))
		return nil
	}
	g := pipeline.NewGroup(ctx)
	g.Go(func(ctx context.Context) error {
		defer close(batches)
		return queueBatches(ctx, bs, d, regular, rep, batches)
	})
	g.GoWorkers(n, func(ctx context.Context) error {
		for b := range batches {
			if err := b.load(ctx, bs, d, zero, write); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err := g.Wait(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	wb.Stop()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("restore disk %q: sync %s: %w", d.Name, f.Name(), err)
	}
	return nil
}

// restoreWorkers is how many batches load at once: the caller's number, else 2 per CPU, or more
// when the repository's store says more loads in flight fill its link (an ssh:// store with read
// lanes on a long round trip, store.LoadParallelism).
func restoreWorkers(bs repo.BlobStore, asked int) int {
	n := defaultWorkers(asked)
	if asked > 0 {
		return n
	}
	return max(n, storeLoadParallelism(bs))
}

// prepareTarget readies f for d and reports whether it is a regular file: one is emptied and
// sized to d (so holes stay holes and no old byte shows through); anything else (a block device)
// must be at least as large as d.
func prepareTarget(d repo.Disk, f *os.File) (regular bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if fi.Mode().IsRegular() {
		if err := f.Truncate(0); err != nil {
			return true, fmt.Errorf("truncate %s: %w", f.Name(), err)
		}
		if err := f.Truncate(d.Size); err != nil {
			return true, fmt.Errorf("size %s to %d: %w", f.Name(), d.Size, err)
		}
		return true, nil
	}
	size, err := fileSize(f)
	if err != nil {
		return false, err
	}
	if size < d.Size {
		return false, fmt.Errorf("%s holds %d bytes, the disk needs %d", f.Name(), size, d.Size)
	}
	return false, nil
}

// queueBatches walks d's map and queues its blocks in batches of neighbours. Holes of a
// regular file are skipped (they are holes already) and counted as done; a device gets them
// written as zeros.
func queueBatches(ctx context.Context, bs repo.BlobStore, d repo.Disk, regular bool, rep progress.Reporter,
	batches chan<- restoreBatch) error {
	var b restoreBatch
	err := walkMap(ctx, bs, d, func(i int64, id repo.ID) error {
		if id.IsZero() && regular {
			rep.Add(int64(blockLen(d, i)))
			return nil
		}
		b.index, b.ids = append(b.index, i), append(b.ids, id)
		if len(b.ids) < restoreBatchBlocks(d.BlockSize) {
			return nil
		}
		full := b
		b = restoreBatch{}
		return pipeline.Send(ctx, batches, full)
	})
	if err != nil || len(b.ids) == 0 {
		return err
	}
	return pipeline.Send(ctx, batches, b)
}

// loadBlock loads block index of d and checks its length, so a corrupt or crafted map cannot
// make a restore write past the block's place.
func loadBlock(ctx context.Context, bs repo.BlobStore, d repo.Disk, index int64, id repo.ID, buf []byte) ([]byte, error) {
	data, err := bs.LoadBlob(ctx, repo.DataBlob, id, buf)
	if err != nil {
		return nil, fmt.Errorf("load block %d of disk %q: %w", index, d.Name, err)
	}
	if want := blockLen(d, index); len(data) != want {
		return nil, fmt.Errorf("block %d of disk %q has %d bytes, want %d: snapshot is corrupt", index, d.Name, len(data), want)
	}
	return data, nil
}

// restoreBatchBytes is how much of a disk one worker asks the store for at once. One block per
// request left an ssh:// restore waiting a round trip per MiB; blocks backed up together sit
// side by side in a pack, so a batch is read in a few ranged loads (repo.LoadBlobs). Memory does
// not grow with it: a batch is delivered one blob at a time.
const restoreBatchBytes = 16 << 20

func restoreBatchBlocks(blockSize int) int { return max(1, restoreBatchBytes/blockSize) }

// restoreBatch is a run of blocks of a disk map, in map order: their indexes and blob ids (zero
// ids only for devices, which get zeros written).
type restoreBatch struct {
	index []int64
	ids   []repo.ID
}

// load loads the batch's blobs and hands each block to write, checking every length so a corrupt
// or crafted map cannot make a restore write past a block's place.
func (b restoreBatch) load(ctx context.Context, bs repo.BlobStore, d repo.Disk, zero []byte,
	write func(index int64, data []byte) error) error {
	ids := make([]repo.ID, 0, len(b.ids))
	at := make([]int, 0, len(b.ids))
	for k, id := range b.ids {
		if id.IsZero() {
			if err := write(b.index[k], zero[:blockLen(d, b.index[k])]); err != nil {
				return err
			}
			continue
		}
		ids, at = append(ids, id), append(at, k)
	}
	return repo.LoadBlobs(ctx, bs, repo.DataBlob, ids, func(i int, data []byte, err error) error {
		index := b.index[at[i]]
		if err != nil {
			return fmt.Errorf("load block %d of disk %q: %w", index, d.Name, err)
		}
		if want := blockLen(d, index); len(data) != want {
			return fmt.Errorf("block %d of disk %q has %d bytes, want %d: snapshot is corrupt", index, d.Name, len(data), want)
		}
		return write(index, data)
	})
}
