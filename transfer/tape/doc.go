// Package tape writes snapshots to tape in a self-describing media format and reads them back.
// docs/tape-format.md is the normative description of the format; keep it in step.
//
// The pieces, from the medium up:
//
//   - transfer/tape/device: a Device reads and writes records, filemarks and positions (the
//     Linux st driver, or a file-backed virtual tape).
//   - record.go: every record has the volume's fixed size (default 256 KiB), a 32-byte header
//     (type, stream, sequence, length) and a CRC-32C over the whole record.
//   - label.go: file 0 of a volume is its label (volume id, pool, sequence, block size, format).
//   - Session (session.go): a backup session appends save sets to the volumes of one pool. A
//     save set is a header record, data records, a trailer (totals, BLAKE3 of the stream); sets
//     written at once share a tape file on separate streams (multiplexing); a filemark ends each
//     file so a restore skips straight to it. A set that reaches the end of the medium goes on
//     on the next volume the Changer loads. Close writes a copy of the catalog as a last file.
//   - Encoder (stream_format.go) is a repo.BlobStore: the images/disk and images/tree backups
//     write into a save set exactly the compressed blobs (and block maps, trees and snapshot
//     manifest) they would write into a repository, deduplicated within the set. Unpack reads
//     such a stream back into any BlobStore (a temporary local repository for restores).
//   - Catalog (catalog.go): which set is on which volume at which file and stream, kept in the
//     tape host's state folder; Scan rebuilds it from the volumes alone.
//   - Drive (drive.go) ties a device path, the catalog and the changer together.
//
// transfer/tape/tapewire carries all of this over an SSH session to `snapferry serve --tape`.
package tape
