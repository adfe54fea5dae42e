// Package libvirt is the Linux/KVM host driver: domains of a local libvirtd (QEMU driver) behind
// appliance.Host, through libvirt's RPC protocol in pure Go (github.com/digitalocean/go-libvirt),
// so the binary stays static. Domain, backup and checkpoint XML are read and edited as a generic
// element tree (xml_tree.go) that writes back everything it does not change.
//
// What it adds over the ESXi driver is QEMU's dirty bitmaps. A backup of a running domain is a
// libvirt pull-mode backup job (virDomainBackupBegin): QEMU exports each disk's state at that
// moment over NBD on 127.0.0.1 and a checkpoint named snapferry-<chain>-<job> starts a new
// dirty bitmap. The first backup reads the allocated extents (NBD block status,
// base:allocation); later ones ask libvirt for an incremental since the checkpoint of the
// repository's last snapshot and read only the extents the qemu:dirty-bitmap context marks,
// taking every other block from that snapshot (images/disk.BackupSource), so each repository
// snapshot is a complete disk. The chain is the repository's id: two repositories keep two
// checkpoints and never steal each other's changes. After a commit the previous checkpoint of
// the chain is deleted (libvirt merges its bitmap into its parent); after a failure the new one
// is, so the old one still covers everything. Only checkpoints named snapferry- are touched.
//
// When the checkpoint a snapshot names is gone (deleted by a user, a raw disk that keeps no
// bitmap, a disk resized, a domain redefined) the disk is read whole once and the snapshot's
// warnings say why. Shut-off domains are read from their disk files through
// `qemu-nbd --read-only` (qcow2 backing chains included), only the dirty extents when the
// chain's checkpoint is the newest (its persistent bitmap exported with --bitmap); their
// checkpoint is kept, since the disk does not change while the domain is off.
//
// --quiesce freezes the guest's file systems through the QEMU guest agent only while the backup
// job starts (quiesce.go), after marking the running domain with live metadata, so a run killed
// while the guest is frozen is found and the guest thawed by the next backup of the domain.
// Without an answering agent the backup goes on crash-consistent, with a warning.
//
// Restore writes each disk as qcow2 or raw into a folder, rewrites the domain XML (name, UUID,
// MAC addresses, disk paths) and defines it; an existing domain of that name is replaced only
// when asked and never while it runs. Instant restore serves the snapshot's disks from the
// repository over NBD (transfer/nbd) as backing files of local qcow2 overlays and starts the
// domain at once.
//
// Replicas (replica.go) keep a ready-to-run mirror of a domain on another host through
// transfer/replica: raw disk files and the domain XML rewritten as for a restore under a new
// name. They read a running domain through the same pull-mode backup job, with a checkpoint
// chain of their own (from the target and the domain), and send only the blocks its dirty
// bitmap marks while the far disks still carry the marks the last complete update left (a
// record per replica in the state folder); otherwise a disk is compared whole once, saying why.
package libvirt
