package s3store

import (
	"context"
	"time"

	"github.com/minio/minio-go/v7"
)

// staleUpload is how old an unfinished multipart upload must be before Cleanup aborts it. The
// repository calls Cleanup under its exclusive lock, so no Save of this repository runs; the
// margin covers clocks that disagree.
const staleUpload = time.Hour

// Cleanup aborts multipart uploads under the repository's prefix left by writers that were killed
// (their parts are billed and invisible), and on an Object Lock bucket removes for good the
// versions hidden by a delete marker whose retention has passed. It returns how many it removed.
func (s *Store) Cleanup(ctx context.Context) (int, error) {
	n := 0
	prefix := s.join("")
	for u := range s.cl.ListIncompleteUploads(ctx, s.o.Bucket, prefix, true) {
		if u.Err != nil {
			return n, s.wrap("list unfinished uploads in", "bucket "+s.o.Bucket, u.Err)
		}
		if s.o.Now().Sub(u.Initiated) < staleUpload {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.o.Bucket, u.Key, u.UploadID); err != nil {
			return n, s.wrap("abort the unfinished upload of", u.Key, err)
		}
		n++
	}
	lockFor, err := s.Retention(ctx)
	if err != nil {
		return n, err
	}
	if lockFor > 0 {
		m, err := s.expireHidden(ctx, prefix)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
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
