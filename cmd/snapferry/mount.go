package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/mountfs"
	"github.com/snapferry/snapferry/images/repo"
)

func newMountCmd(a *app) *cobra.Command {
	var repoFlag *string
	var debug bool
	c := &cobra.Command{
		Use:   "mount [REPO] DIR [options]",
		Short: "serve a repository read-only as a folder (FUSE, Linux)",
		Long: "Mount serves REPO (or --repo, $SNAPFERRY_REPO) read-only through FUSE at the empty folder DIR:\n" +
			"snapshots, their trees, disks and the partitions inside them. Ctrl-C (or SIGTERM) unmounts.",
		Example: "  snapferry mount /backup/repo /mnt/snapferry",
		Args:    maxArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 2 && *repoFlag == "" {
				*repoFlag, args = args[0], args[1:]
			}
			if len(args) != 1 {
				return usagef("mount takes a repository and an empty folder: snapferry mount REPO DIR")
			}
			return a.withRepo(*repoFlag, false, func(r *repo.Repository) error { return a.mount(r, args[0], debug) })
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	c.Flags().BoolVar(&debug, "debug-fuse", false, "log every FUSE request")
	return c
}

// mount serves r read-only through FUSE at dir until Ctrl-C (or SIGTERM), then unmounts.
func (a *app) mount(r *repo.Repository, dir string, debug bool) error {
	spec := r.Backend().Location()
	pos := []string{dir}
	srv, err := mountfs.Mount(a.ctx, r, pos[0], mountfs.Options{
		Debug: debug,
		Logf:  func(f string, args ...any) { fmt.Fprintf(a.stderr, "snapferry mount: "+f+"\n", args...) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "mounted %s read-only at %s; snapshots are in %s/snapshots; Ctrl-C unmounts\n", spec, pos[0], pos[0])
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-a.ctx.Done():
		if err := srv.Unmount(); err != nil {
			return fmt.Errorf("unmount %s: %w (close what uses it, then `fusermount3 -u %s`)", pos[0], err, pos[0])
		}
		<-done
		fmt.Fprintf(a.stdout, "unmounted %s\n", pos[0])
		return nil // Ctrl-C is how a mount is meant to end
	case <-done: // unmounted from outside (fusermount3 -u)
		return nil
	}
}
