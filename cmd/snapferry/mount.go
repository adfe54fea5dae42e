package main

import (
	"fmt"

	"github.com/snapferry/snapferry/images/mountfs"
)

// runMount serves a repository read-only through FUSE until Ctrl-C (or SIGTERM), then
// unmounts: `snapferry mount REPO DIR` (REPO may also come from --repo or SNAPFERRY_REPO).
func runMount(a *app, args []string) int {
	repoFlag := a.addRepoFlag()
	debug := a.flags.Bool("debug-fuse", false, "log every FUSE request")
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) == 2 && *repoFlag == "" {
		*repoFlag, pos = pos[0], pos[1:]
	}
	if len(pos) != 1 {
		return a.fail(usagef("mount takes a repository and an empty folder: snapferry mount REPO DIR"))
	}
	spec, err := repoSpec(*repoFlag, "repo")
	if err != nil {
		return a.fail(err)
	}
	r, err := a.openRepo(spec, false)
	if err != nil {
		return a.fail(err)
	}
	defer r.Close()
	srv, err := mountfs.Mount(a.ctx, r, pos[0], mountfs.Options{
		Debug: *debug,
		Logf:  func(f string, args ...any) { fmt.Fprintf(a.stderr, "snapferry mount: "+f+"\n", args...) },
	})
	if err != nil {
		return a.fail(err)
	}
	fmt.Fprintf(a.stdout, "mounted %s read-only at %s; snapshots are in %s/snapshots; Ctrl-C unmounts\n", spec, pos[0], pos[0])
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-a.ctx.Done():
		if err := srv.Unmount(); err != nil {
			return a.fail(fmt.Errorf("unmount %s: %w (close what uses it, then `fusermount3 -u %s`)", pos[0], err, pos[0]))
		}
		<-done
		fmt.Fprintf(a.stdout, "unmounted %s\n", pos[0])
		return exitOK // Ctrl-C is how a mount is meant to end
	case <-done: // unmounted from outside (fusermount3 -u)
		return exitOK
	}
}
