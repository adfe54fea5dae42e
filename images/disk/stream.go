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

	n := restoreWorkers(bs, opts.Workers) // a long link's store asks for more loads in flight
	s := &streamer{bs: bs, d: d, w: w, rep: rep, pool: pipeline.NewBufferPool(2*n+2, d.BlockSize)}
	jobs := make(chan streamJob, n)
	results := make(chan streamJob, n)
	g := pipeline.NewGroup(ctx)
	g.Go(func(ctx context.Context) error {
		defer close(jobs)
		return s.queueBlocks(ctx, jobs)
	})
	g.GoWorkers(n, func(ctx context.Context) error {
		return s.loadBlocks(ctx, jobs, results)
	}, func() { close(results) })
	g.Go(func(ctx context.Context) error {
		return s.writeInOrder(ctx, results)
	})
	if err := g.Wait(); err != nil {
		return s.written, fmt.Errorf("stream: %w", err)
	}
	return s.written, nil
}

// streamJob is one stored block on its way from the map to the writer.
type streamJob struct {
	seq   uint64
	index int64
	id    repo.ID
	buf   []byte // taken from the pool by the loader, so a job never waits for a buffer
}

// streamer is one Stream: the three stages (map walker, block loaders, writer) share it.
type streamer struct {
	bs      repo.BlobStore
	d       repo.Disk
	w       io.Writer
	rep     progress.Reporter
	pool    *pipeline.BufferPool
	written int64 // by the writer; read after the stages end
}

// queueBlocks walks the disk's map and queues every stored block (holes are written by the
// writer), numbered so the writer can put them back in order.
func (s *streamer) queueBlocks(ctx context.Context, jobs chan<- streamJob) error {
	var seq uint64
	return walkMap(ctx, s.bs, s.d, func(i int64, id repo.ID) error {
		if id.IsZero() {
			return nil
		}
		buf, err := s.pool.Get(ctx)
		if err != nil {
			return err
		}
		seq++
		return pipeline.Send(ctx, jobs, streamJob{seq - 1, i, id, buf})
	})
}

// loadBlocks is one loader: it loads the blocks of jobs, in any order.
func (s *streamer) loadBlocks(ctx context.Context, jobs <-chan streamJob, results chan<- streamJob) error {
	for j := range jobs {
		data, err := loadBlock(ctx, s.bs, s.d, j.index, j.id, j.buf)
		if err != nil {
			return err
		}
		j.buf = data
		if err := pipeline.Send(ctx, results, j); err != nil {
			return err
		}
	}
	return nil
}

// writeInOrder writes the loaded blocks in disk order, zeros for the holes before each and
// after the last.
func (s *streamer) writeInOrder(ctx context.Context, results <-chan streamJob) error {
	d := s.d
	zero := make([]byte, d.BlockSize)
	next := int64(0) // first block not yet written
	fill := func(upto int64) error {
		for ; next < upto; next++ {
			k := blockLen(d, next)
			if _, err := s.w.Write(zero[:k]); err != nil {
				return fmt.Errorf("stream disk %q: write block %d: %w", d.Name, next, err)
			}
			s.written += int64(k)
			s.rep.Add(int64(k))
		}
		return nil
	}
	ord := pipeline.NewReorder[streamJob]()
	for r := range results {
		err := ord.Push(r.seq, r, func(j streamJob) error {
			defer s.pool.Put(j.buf)
			if err := fill(j.index); err != nil {
				return err
			}
			if _, err := s.w.Write(j.buf); err != nil {
				return fmt.Errorf("stream disk %q: write block %d: %w", d.Name, j.index, err)
			}
			s.written += int64(len(j.buf))
			s.rep.Add(int64(len(j.buf)))
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
}
