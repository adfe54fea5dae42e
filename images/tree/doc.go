// Package tree backs up directory trees into a repository and restores them.
//
// Backup walks the given paths depth-first in one goroutine, lstat-ing every entry once
// (relative to its open directory), and hands file contents to a bounded worker pool: small
// files are read, hashed and stored whole by the workers; larger ones are cut into
// content-defined chunks (FastCDC) so an insertion costs one chunk, not the rest of the file.
// Every directory becomes a repo.Tree blob once all its entries are done; a directory's
// completion is tracked with a counter, not a goroutine, so no goroutine count grows with the
// tree. With a parent snapshot, a file whose size, mtime and inode are unchanged reuses the
// parent's content ids without being opened. Unreadable entries are recorded in their node's
// Error and returned; the backup goes on (the caller reports a partial snapshot).
//
// Restore recreates the tree below a target folder with every operation relative to an open
// directory and O_NOFOLLOW, and refuses names that could leave the target ("..", "/", empty,
// duplicates), so a crafted snapshot cannot write elsewhere. Contents are written by parallel
// workers under a temporary name (NAME.snapferry-partial) that is renamed when the file is
// complete; ownership (as root), modes and times are applied after contents, a directory's last.
// An entry already in the target is left alone when it has the snapshot's content and kept
// (overwrite.ErrDiffers) when it differs, unless RestoreOptions.Overwrite: package overwrite's
// rule, which every restore follows.
//
// List streams the entries of a snapshot tree to a callback for `snapferry ls`.
package tree
