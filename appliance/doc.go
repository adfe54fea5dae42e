// Package appliance is the hypervisor host as snapferry sees it: a Host interface (inventory, VM
// configuration, snapshots, power, registration, disk clones, datastores) that drivers implement
// (appliance/esxi over vim-cmd and friends), plus what every job on a host needs regardless of the
// driver: per-VM locks and the error classes drivers map host faults to.
//
// The jobs that run on a host (VM backup and restore) build on this interface only, so they can be
// driven by any driver; tests drive them against the ESXi simulator (appliance/esxi/sim).
package appliance
