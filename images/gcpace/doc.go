// Package gcpace sets the Go runtime's GC target and soft memory limit for the length of one
// run and puts the previous ones back after it. A tree backup or restore tightens both to stay
// near 64 MiB on the ESXi shell's shared memory pool (images/tree); an image restore from an
// ssh:// store raises the target under a limit, because the SSH library turns every received
// byte into garbage (images/disk). Both limits sit on top of the repository's index, which
// grows with the repository and not with the run.
package gcpace
