// Package overwrite holds the one rule every restore follows (files, trees, disk images, VMs),
// so the three restorers cannot drift apart:
//
//   - an entry that does not exist is written under a temporary name (PartialName) and renamed
//     to its final name only once it is complete, so nothing that looks finished is ever half
//     written; a failed entry's temporary file is removed;
//   - an existing entry with the same content is left as it is (a rerun of an interrupted
//     restore costs a read, not a write);
//   - an existing entry whose content differs is never replaced unless the caller asked to
//     overwrite: it is reported as ErrDiffers and the restore goes on; NotReplaced lists such
//     entries and makes the run partial (its ExitCode is 3) with a hint naming --overwrite.
package overwrite
