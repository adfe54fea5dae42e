package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The block fingerprint cache (docs/block-cache.md) lets an incremental backup skip BLAKE3 for
// blocks that did not change. For each allocated block of the last successful backup of a source
// to a repository it keeps a seeded XXH3-128 (about ten times cheaper than BLAKE3) and the blob
// id the block was stored under. A block whose fast hash matches, and whose blob the repository
// still has, reuses that id: no BLAKE3, no SaveBlob. Everything else is hashed and saved as
// without a cache. The replica trusts the same fast hash to find changed blocks
// (docs/replica.md, "Two hashes per block").

// CacheMaxAge is how long a cache whose source is no longer backed up is kept.
const CacheMaxAge = 90 * 24 * time.Hour

// tempMaxAge is how old a cache temp file (left by a killed backup) must be before it is
// removed. A running backup appends to its temp file as it goes, so its mtime stays fresh.
const tempMaxAge = 24 * time.Hour

// CacheDir is the folder of the block fingerprint caches inside a state folder.
func CacheDir(stateDir string) string { return filepath.Join(stateDir, "cache", "blocks") }

// CachePath names the cache file of one source in one repository: dir/<hex of
// sha256(repoID + key)>. key must be stable across runs: the absolute path of an image, or for a
// VM its identity and the disk's device, never a path that changes per run (a hot backup may read
// a temporary chain clone). A wrong key only costs speed: an entry is used only when the block
// hashes the same under the file's seed and the repository has its blob.
func CachePath(dir, repoID, key string) string {
	sum := sha256.Sum256([]byte(repoID + key))
	return filepath.Join(dir, hex.EncodeToString(sum[:]))
}

// RemoveStaleCaches removes the caches in dir that no backup rewrote for maxAge (by mtime: every
// successful backup writes its cache anew), and temp files of killed runs older than a day. It
// costs one directory listing; a missing folder is no error. It returns how many files it
// removed.
func RemoveStaleCaches(dir string, maxAge time.Duration, now time.Time) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		age := maxAge
		if strings.Contains(e.Name(), fpTempInfix) {
			age = min(age, tempMaxAge)
		}
		if now.Sub(fi.ModTime()) <= age {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// openCache sets up the run's cache from opts: the old file to read (unless Rehash), and the new
// one to write. Nothing here can fail the backup: without a usable old file every block is
// hashed, and without a new one the old stays.
func (b *diskBackup) openCache(opts Options) {
	if opts.Cache == "" || opts.RepoID == "" {
		return
	}
	seed := newSeed()
	if !opts.Rehash {
		if r, err := openFingerprints(opts.Cache, opts.RepoID, b.blockSize); err == nil {
			// Keep the seed, so one fast hash per block both checks the old entry and makes
			// the new one. --rehash draws a new seed.
			b.old, seed = r, r.hdr.seed
		}
	}
	w, err := createFingerprints(opts.Cache, fpHeader{blockSize: b.blockSize, seed: seed, diskSize: b.size, repoID: opts.RepoID})
	if err == nil {
		b.out = w
	}
	b.seed = seed
	b.fast = b.old != nil || b.out != nil
}

// closeCache ends the run's cache use: the new file replaces the old one only when the whole
// backup succeeded. A failed run leaves the old file, which is still right for the blocks it
// names. A failed commit is not the backup's failure either.
func (b *diskBackup) closeCache(ok bool) {
	b.old.close()
	if ok {
		_ = b.out.commit()
	} else {
		b.out.abort()
	}
}
