// Package device is the tape drive layer under transfer/tape: a Device reads and writes whole
// records, writes and skips filemarks, rewinds, and reports its position and end of medium.
//
// Two implementations honour the same contract:
//
//   - the Linux st driver (/dev/nst*, the non-rewinding nodes), driven with read/write of one
//     record per call in variable-block mode and the MTIOCTOP (MTWEOF, MTFSF, MTREW, MTEOM,
//     MTSETBLK) and MTIOCGET ioctls;
//   - a virtual tape: a regular file that stores records with their boundaries, filemarks, a
//     fixed capacity after which writes fail with ErrEndOfMedium, and the position semantics of
//     a drive (writing truncates everything after the head, like a real tape overwrites).
//
// Contract (both implementations):
//
//   - ReadRecord returns one record. At a filemark it returns ErrFilemark and the head is past
//     the filemark (at the first record of the next file); at the end of recorded data it
//     returns ErrEndOfData and does not move.
//   - WriteRecord writes one record or, when the medium is full, returns ErrEndOfMedium and
//     writes nothing; WriteFilemark still works after that, so a writer can close the file.
//   - Everything after the head is lost when writing (tape semantics: no insert, no update).
//   - SkipFiles(n) moves forward past n filemarks (MTFSF); SeekEnd moves to the end of data so a
//     new file can be appended; Rewind moves to the beginning of the tape.
//   - A device is used by one process at a time: opening a busy device fails with ErrBusy
//     (the st driver's EBUSY; an exclusive lock for virtual tapes).
//
// Open picks the implementation: a character device is a drive, anything else a virtual tape.
package device
