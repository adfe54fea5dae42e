package tree

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/pipeline"
	"github.com/snapferry/snapferry/images/repo"
)

// Most files of a tree are small: one blob each, stored side by side in the packs in the
// order the backup met them. Restoring them in batches lets one repo.LoadBlobs call read a
// whole batch in a few ranged store requests instead of one round trip per file, which is
// what made restores from ssh:// and sftp:// repositories slow.
const (
	restoreBatchFiles = 64
	restoreBatchBytes = 4 << 20
	// restoreBatchBlob is the largest file that goes into a batch: a batch is decoded with
	// scratch for its largest blob in every worker at once (8 workers, single-chunk files of up
	// to 4 MiB: ~6 MiB of a /usr/share restore's peak, measured). Bigger files are few, gain
	// little from sharing a request, and take the bounded buffers of files of their own.
	restoreBatchBlob = 256 << 10
)

// batchFile queues a small file (one blob at most, not hard-linked) for a batch. The worker
// creates it: a batch holds no open files while it waits.
func (r *restorer) batchFile(ctx context.Context, j restoreJob) error {
	j.dir.pending.Add(1)
	j.batched = true
	r.batch = append(r.batch, j)
	r.batchBytes += j.node.Size
	if len(r.batch) < restoreBatchFiles && r.batchBytes < restoreBatchBytes {
		return nil
	}
	return r.sendBatch(ctx)
}

// sendBatch hands the queued small files to a worker.
func (r *restorer) sendBatch(ctx context.Context) error {
	if len(r.batch) == 0 {
		return nil
	}
	b := r.batch
	r.batch, r.batchBytes = nil, 0
	return pipeline.Send(ctx, r.jobs, b)
}

// writeBatch places the files of a batch and fills those to be written from one LoadBlobs
// call. A file that cannot be created or whose blob cannot be loaded is reported and the
// others go on.
func (r *restorer) writeBatch(ctx context.Context, jobs []restoreJob) error {
	files := make([]*os.File, len(jobs))
	// Cancelled: close and remove what is still open; the directories are closed after the run.
	abandon := func() {
		for k, f := range files {
			if f != nil {
				f.Close()
				unix.Unlinkat(jobs[k].dir.fd, jobs[k].tmp, 0)
			}
		}
	}
	var ids []repo.ID
	var at []int // the job of each id
	for k := range jobs {
		j := &jobs[k]
		ok, err := r.openFile(ctx, j)
		if err != nil {
			abandon()
			return err
		}
		if !ok {
			continue
		}
		files[k] = os.NewFile(uintptr(j.fd), j.path)
		if len(j.node.Content) == 0 {
			r.finishFile(*j, files[k], 0)
			files[k] = nil
			continue
		}
		ids, at = append(ids, j.node.Content[0]), append(at, k)
	}
	err := repo.LoadBlobs(ctx, r.bs, repo.DataBlob, ids, func(i int, data []byte, err error) error {
		k := at[i]
		j, f := jobs[k], files[k]
		var written uint64
		switch {
		case err != nil && ctx.Err() != nil:
			return context.Cause(ctx)
		case err != nil:
			r.fail(j.path, fmt.Errorf("load chunk 0: %w", err))
		default:
			if err := disk.WriteSparse(f, data, 0); err != nil {
				r.fail(j.path, fmt.Errorf("write: %w", err))
				break
			}
			written = uint64(len(data))
			r.progress.Add(int64(len(data)))
		}
		files[k] = nil
		r.finishFile(j, f, written)
		return nil
	})
	if err != nil {
		abandon()
		return err
	}
	return nil
}
