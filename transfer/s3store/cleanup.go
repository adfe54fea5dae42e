package s3store

import (
	"context"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
)

// CleanTemp is store.TempCleaner for an object store: the leftovers of interrupted uploads are
// the unfinished multipart uploads under the repository's prefix (a writer killed mid-pack: its
// parts are billed and invisible, nothing shows under the pack's name). It counts them with the
// bytes of their parts and aborts those the server started before `before` (zero: only count).
// The repository passes a time before which no live writer can have started one (its lock
// horizon, prune_leftovers.go), so an upload in progress is never aborted, and the times compared
// are the server's: Initiated here, the lock files' LastModified there.
func (s *Store) CleanTemp(ctx context.Context, before time.Time) (store.TempReport, error) {
	var rep store.TempReport
	for u := range s.cl.ListIncompleteUploads(ctx, s.o.Bucket, s.join(""), true) {
		if u.Err != nil {
			return rep, s.wrap("list unfinished uploads in", "bucket "+s.o.Bucket, u.Err)
		}
		size, err := s.uploadSize(ctx, u.Key, u.UploadID)
		if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
			continue // finished or aborted meanwhile
		}
		if err != nil {
			return rep, s.wrap("list the parts of the unfinished upload of", u.Key, err)
		}
		rep.Found++
		rep.BytesFound += size
		if before.IsZero() || !u.Initiated.Before(before) {
			continue
		}
		err = s.core.AbortMultipartUpload(ctx, s.o.Bucket, u.Key, u.UploadID)
		if err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" { // finished or aborted meanwhile
			return rep, s.wrap("abort the unfinished upload of", u.Key, err)
		}
		if err == nil {
			rep.Removed++
			rep.BytesRemoved += size
		}
	}
	return rep, nil
}

// uploadSize adds up the parts an unfinished upload holds (a listing of uploads tells none).
func (s *Store) uploadSize(ctx context.Context, key, id string) (int64, error) {
	var size int64
	for marker := 0; ; {
		res, err := s.core.ListObjectParts(ctx, s.o.Bucket, key, id, marker, 1000)
		if err != nil {
			return size, err
		}
		for _, p := range res.ObjectParts {
			size += p.Size
		}
		if !res.IsTruncated || res.NextPartNumberMarker <= marker {
			return size, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// Cleanup removes for good, on an Object Lock bucket, the versions hidden by a delete marker
// whose retention has passed, and returns how many it removed. (Unfinished uploads are
// CleanTemp's.)
func (s *Store) Cleanup(ctx context.Context) (int, error) {
	lockFor, err := s.Retention(ctx)
	if err != nil || lockFor <= 0 {
		return 0, err
	}
	return s.expireHidden(ctx, s.join(""))
}

// expireHidden deletes the noncurrent versions (and delete markers) under prefix whose key's
// latest version is a delete marker, once their retention has passed; a version still retained
// is left for a later run.
func (s *Store) expireHidden(ctx context.Context, prefix string) (int, error) {
	n := 0
	hidden := map[string]bool{}
	var versions []minio.ObjectInfo
	for oi := range s.cl.ListObjects(ctx, s.o.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if oi.Err != nil {
			return n, s.wrap("list versions in", "bucket "+s.o.Bucket, oi.Err)
		}
		if oi.IsLatest && oi.IsDeleteMarker {
			hidden[oi.Key] = true
		}
		versions = append(versions, oi)
	}
	left := map[string]int{}
	for _, v := range versions {
		if !hidden[v.Key] || v.IsDeleteMarker {
			continue
		}
		err := s.cl.RemoveObject(ctx, s.o.Bucket, v.Key, minio.RemoveObjectOptions{VersionID: v.VersionID})
		if err != nil {
			// Still retained (the server refuses), or already gone: try again next time.
			left[v.Key]++
			continue
		}
		n++
	}
	for _, v := range versions {
		if v.IsDeleteMarker && hidden[v.Key] && left[v.Key] == 0 {
			if err := s.cl.RemoveObject(ctx, s.o.Bucket, v.Key, minio.RemoveObjectOptions{VersionID: v.VersionID}); err == nil {
				n++
			}
		}
	}
	return n, nil
}
