// Package vmjob runs VM backups, replicas and restores on a host (appliance.Host): backups into
// and restores out of a repository (images/repo), replicas to the far side of a transfer/replica
// push, as the CLI's `backup --vm`, `replica --vm` and `restore` of a VM snapshot call them.
//
// Backup and replica copy a VM through Freeze, which holds it at one moment of consistency while
// a callback copies it and undoes everything it did (our snapshot, power, clones, staged files)
// whatever the callback returns; the guarantees below hold for both.
//
// A hot backup takes a VM snapshot named snapferry-<jobid>, reads the frozen disks (sparse, through
// images/vmdk and images/disk) and the VM's config files, commits one repository snapshot of kind
// "vm", and removes its VM snapshot: always, also on errors and when the context is cancelled
// (SIGINT/SIGTERM in the CLI). Snapshots that a killed earlier run left are removed first; they
// are recognised by the snapferry- name prefix only, so a user's snapshot is never touched and
// removeall is never used. A VM that already has user snapshots is backed up in its current state
// by cloning the frozen chain to a temporary thin disk (vmkfstools -i) on a datastore with room, or
// refused with a message saying what to do. Warm backups shut the guest down for the moment of the
// snapshot; cold backups keep it off for the whole copy. Independent disks (hot/warm) and raw device
// mappings are skipped with a warning, which makes the result partial. Per-VM locks keep two jobs
// off one VM.
//
// A replica (ReplicaVM) pushes one folder named like the VM that runs as it is: each disk's
// frozen flat extent (updated block by block on the far side), a descriptor naming it, and the
// config files with the .vmx pointing at those descriptors; disks left out are disabled there.
// The push itself is the caller's (PushFunc): this package never talks SSH.
//
// A restore writes thin disks and the config files into NAME.snapferry-partial on a datastore,
// rewrites the .vmx for the new name, and only when all of it is written moves it to the VM's
// folder, registers the VM and powers it on if asked; a failed restore removes the partial
// folder. An existing VM of that name is never touched unless told to overwrite it, and a
// running one only when also told to power it off; it stays registered and running until the new
// VM is complete, and its files the restored VM does not use (a disk on another datastore) are
// removed only after the new VM is in place, and listed (docs/restore.md).
package vmjob
