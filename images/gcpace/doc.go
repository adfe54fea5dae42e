// Package gcpace sets the Go runtime's GC target and soft memory limit for the length of one
// run and puts the previous ones back after it. A tree backup or restore tightens both to stay
// near 64 MiB on the ESXi shell's shared memory pool (images/tree); an image restore raises the
// target under a limit (images/disk), because from an ssh:// store the SSH library turns every
// received byte into garbage; a store on a long link keeps the defaults. Both limits sit on top of the repository's index, which
// grows with the repository and not with the run.
package gcpace
