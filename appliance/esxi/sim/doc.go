// Package sim is an ESXi host simulator for tests: the logic behind cmd/esxisim, a multi-call
// binary that answers as vim-cmd, vmkfstools, esxcli and vmware with output byte-for-byte in the
// formats of shared/esxi-reference, quirks included.
//
// A simulated host is a folder laid out like /vmfs/volumes: one real folder per datastore named by
// its UUID plus a symlink with the datastore's name (names may hold spaces), VM folders with real
// .vmx, .vmsd, .nvram files, VMDK descriptors and sparse flat extents. Bookkeeping lives in
// ROOT/.esxisim: the inventory (etc/vmware/hostd/vmInventory.xml, as on a host), runtime state
// (power, tools, running tasks), the fault switches and an event journal. Every command takes an
// flock on ROOT/.esxisim/lock, so concurrent invocations (a backup and a simulated guest writing)
// see consistent state.
//
// Snapshots are real: snapshot.create writes delta descriptors (NAME-000001.vmdk; seSparse data
// files on VMFS-6, vmfsSparse on others), points the .vmx at them and records the tree in the
// .vmsd. A simulated guest's writes (Host.GuestWrite, `esxisim guest write`) then land in the
// newest delta with copy-on-write at the grain size, never in a frozen file; removing a snapshot
// merges its child delta into its parent. A delta's data file is a sparse file as large as the
// disk whose allocated grains are the grains the delta holds, so the simulator needs a file system
// that keeps holes (ext4, xfs, tmpfs); it checks and says so.
//
// Host tasks (snapshot creation, guest shutdown) complete later when the slow-tasks fault is set:
// a command records the task with a due time and every later invocation completes the tasks that
// are due, so callers must poll as they must on a real host.
package sim
