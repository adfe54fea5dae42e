package disk

import (
	"context"
	"fmt"
	"os"

	"github.com/snapferry/snapferry/images/pipeline"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

// RestoreOptions tune a restore. The zero value uses one worker per CPU.
type RestoreOptions struct {
	Workers  int // blob-loading goroutines; default 2 per CPU (see defaultWorkers)
	Progress progress.Reporter
}

// Restore writes disk d to path, creating the file or truncating an existing one. See
// RestoreFile.
func Restore(ctx context.Context, bs repo.BlobStore, d repo.Disk, path string, opts RestoreOptions) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("restore disk %q: %w", d.Name, err)
	}
	if err := RestoreFile(ctx, bs, d, f, opts); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("restore disk %q: close %s: %w", d.Name, path, err)
	}
	return nil
}

// RestoreFile writes disk d into f. A regular file is emptied and set to d.Size, then only
// non-hole blocks are written (and within them only the non-zero 4 KiB pages), so the result
// is at least as sparse as the source. Anything else (a block device) must be at least
// d.Size long and gets holes written as zeros, since old contents would otherwise show
// through. Blocks are loaded and written by parallel workers; f is synced before return.
func RestoreFile(ctx context.Context, bs repo.BlobStore, d repo.Disk, f *os.File, opts RestoreOptions) error {
	if err := checkDisk(d); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("restore disk %q: stat %s: %w", d.Name, f.Name(), err)
	}
	regular := fi.Mode().IsRegular()
	if regular {
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("restore disk %q: truncate %s: %w", d.Name, f.Name(), err)
		}
		if err := f.Truncate(d.Size); err != nil {
			return fmt.Errorf("restore disk %q: size %s to %d: %w", d.Name, f.Name(), d.Size, err)
		}
	} else if size, err := fileSize(f); err != nil {
		return fmt.Errorf("restore disk %q: %w", d.Name, err)
	} else if size < d.Size {
		return fmt.Errorf("restore disk %q: %s holds %d bytes, the disk needs %d", d.Name, f.Name(), size, d.Size)
	}
	rep := progress.OrNop(opts.Progress)
	rep.Start(d.Name, d.Size)
	defer rep.Done()

	type job struct {
		index int64
		id    repo.ID
	}
	n := defaultWorkers(opts.Workers)
	jobs := make(chan job, 2*n)
	wb := startWriteback(int(f.Fd()), syncWrite)
	defer wb.stop()
	zero := make([]byte, d.BlockSize)
	g := pipeline.NewGroup(ctx)
	g.Go(func(ctx context.Context) error {
		defer close(jobs)
		return walkMap(ctx, bs, d, func(i int64, id repo.ID) error {
			if id.IsZero() && regular {
				rep.Add(int64(blockLen(d, i)))
				return nil
			}
			return pipeline.Send(ctx, jobs, job{i, id})
		})
	})
	g.GoWorkers(n, func(ctx context.Context) error {
		var buf []byte
		for j := range jobs {
			want := blockLen(d, j.index)
			data := zero[:want]
			if !j.id.IsZero() {
				var err error
				if data, err = loadBlock(ctx, bs, d, j.index, j.id, buf); err != nil {
					return err
				}
				buf = data
			}
			off := j.index * int64(d.BlockSize)
			var err error
			if regular {
				err = WriteSparse(f, data, off)
			} else {
				_, err = f.WriteAt(data, off)
			}
			if err != nil {
				return fmt.Errorf("restore disk %q: write block %d to %s: %w", d.Name, j.index, f.Name(), err)
			}
			wb.wrote(want)
			rep.Add(int64(want))
		}
		return nil
	}, nil)
	if err := g.Wait(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	wb.stop()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("restore disk %q: sync %s: %w", d.Name, f.Name(), err)
	}
	return nil
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
