package disk

import (
	"context"
	"fmt"
	"io"

	"github.com/snapferry/snapferry/images/pipeline"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

// Stream writes the whole image of d to w in order, holes as zeros, for pipes and devices that
// cannot seek. Workers load blocks ahead of the writer; memory is bounded by 2*workers+2
// blocks. It returns the number of bytes written.
func Stream(ctx context.Context, bs repo.BlobStore, d repo.Disk, w io.Writer, opts RestoreOptions) (int64, error) {
	if err := checkDisk(d); err != nil {
		return 0, fmt.Errorf("stream: %w", err)
	}
	rep := progress.OrNop(opts.Progress)
	rep.Start(d.Name, d.Size)
	defer rep.Done()

	type job struct {
		seq   uint64
		index int64
		id    repo.ID
		buf   []byte // taken from the pool by the loader, so a job never waits for a buffer
	}
	n := defaultWorkers(opts.Workers)
	pool := pipeline.NewBufferPool(2*n+2, d.BlockSize)
	jobs := make(chan job, n)
	results := make(chan job, n)
	g := pipeline.NewGroup(ctx)
	g.Go(func(ctx context.Context) error {
		defer close(jobs)
		var seq uint64
		return walkMap(ctx, bs, d, func(i int64, id repo.ID) error {
			if id.IsZero() {
				return nil
			}
			buf, err := pool.Get(ctx)
			if err != nil {
				return err
			}
			seq++
			return pipeline.Send(ctx, jobs, job{seq - 1, i, id, buf})
		})
	})
	g.GoWorkers(n, func(ctx context.Context) error {
		for j := range jobs {
			data, err := loadBlock(ctx, bs, d, j.index, j.id, j.buf)
			if err != nil {
				return err
			}
			j.buf = data
			if err := pipeline.Send(ctx, results, j); err != nil {
				return err
			}
		}
		return nil
	}, func() { close(results) })
	var written int64
	g.Go(func(ctx context.Context) error {
		zero := make([]byte, d.BlockSize)
		next := int64(0) // first block not yet written
		fill := func(upto int64) error {
			for ; next < upto; next++ {
				k := blockLen(d, next)
				if _, err := w.Write(zero[:k]); err != nil {
					return fmt.Errorf("stream disk %q: write block %d: %w", d.Name, next, err)
				}
				written += int64(k)
				rep.Add(int64(k))
			}
			return nil
		}
		ord := pipeline.NewReorder[job]()
		for r := range results {
			err := ord.Push(r.seq, r, func(j job) error {
				defer pool.Put(j.buf)
				if err := fill(j.index); err != nil {
					return err
				}
				if _, err := w.Write(j.buf); err != nil {
					return fmt.Errorf("stream disk %q: write block %d: %w", d.Name, j.index, err)
				}
				written += int64(len(j.buf))
				rep.Add(int64(len(j.buf)))
				next = j.index + 1
				return nil
			})
			if err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fill((d.Size + int64(d.BlockSize) - 1) / int64(d.BlockSize))
	})
	err := g.Wait()
	if err != nil {
		return written, fmt.Errorf("stream: %w", err)
	}
	return written, nil
}
