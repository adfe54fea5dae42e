// Package local is the store.Backend for a repository in a folder on a local file system (a
// VMFS datastore, an NFS mount, a Linux disk).
//
// Layout below the root: "config", keys/, data/XX/<name> (XX = the name's first two hex digits, so
// no folder grows past a few thousand entries on file systems that slow down with big folders),
// index/, snapshots/, locks/.
//
// Every Save writes a temp file (".tmp-" prefix) in the destination folder, fsyncs it, links it to
// the final name (link fails if the name exists, which makes "never overwrite" atomic even between
// hosts sharing an NFS or VMFS folder) and fsyncs the folder. SaveStream (store.StreamSaver) does
// the same with a temp file in the kind's folder that is filled before the name is known; Save is
// such a pending file committed at once. Temp files are never listed; ones left by a crash are
// harmless and `Cleanup` removes them.
package local
