package main

import (
	"errors"
	"fmt"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/ratelimit"
)

// Source repository passwords: separate from the target's (--password-file and its variables),
// since the two repositories usually have different ones.
const (
	flagFromPasswordFile = "from-password-file"
	envFromPasswordFile  = "SNAPFERRY_FROM_PASSWORD_FILE"
	envFromPassword      = "SNAPFERRY_FROM_PASSWORD"
)

// runCopy is `snapferry copy --from=REPO --to=REPO`: the snapshots of one repository into
// another of any kind (repo.Copy does the work), sending only what the target lacks.
func runCopy(a *app, args []string) int {
	a.addSSHFlags()
	a.addPasswordFlag() // the target's
	from := a.flags.String("from", "", "repository to copy from")
	to := a.flags.String("to", "", "repository to copy to (env SNAPFERRY_REPO)")
	fromPW := a.flags.String(flagFromPasswordFile, "", "file whose first line is the source repository's password (env "+
		envFromPasswordFile+"; or set "+envFromPassword+")")
	host := a.flags.String("host-filter", "", "only snapshots of this host")
	source := a.flags.String("source", "", "only snapshots of this source (VM name, path)")
	tag := a.flags.String("tag", "", "only snapshots with this tag")
	latest := a.flags.Int("latest", 0, "only the newest N snapshots of each source")
	bw := a.flags.String("bwlimit", "", "limit the upload rate to the target, e.g. 20M (bytes per second)")
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("copy takes no arguments, got %q: snapferry copy --from=REPO --to=REPO", pos))
	}
	if *from == "" {
		return a.fail(usagef("copy needs --from=REPO"))
	}
	toSpec, err := repoSpec(*to, "to")
	if err != nil {
		return a.fail(err)
	}
	if *latest < 0 {
		return a.fail(usagef("--latest=%d: want a positive count", *latest))
	}
	if *bw != "" {
		if a.bwlimit, err = ratelimit.ParseRate(*bw); err != nil {
			return a.fail(usagef("--bwlimit=%q: %v (examples: 20M, 500K)", *bw, err))
		}
	}

	pw, err := passwordFrom(*fromPW, envFromPasswordFile, envFromPassword, "--"+flagFromPasswordFile)
	if err != nil {
		return a.fail(err)
	}
	srcBe, err := a.openBackend(*from)
	if err != nil {
		return a.fail(err)
	}
	src, err := repo.Open(a.ctx, srcBe, repo.Options{Password: pw})
	if err != nil {
		srcBe.Close()
		if errors.Is(err, repo.ErrNoPassword) {
			return a.fail(fmt.Errorf("source %s is encrypted: give its password in --%s, $%s or $%s: %w",
				*from, flagFromPasswordFile, envFromPasswordFile, envFromPassword, err))
		}
		return a.fail(fmt.Errorf("source: %w", err))
	}
	defer src.Close()
	dst, err := a.openRepo(toSpec, true)
	if err != nil {
		return a.fail(fmt.Errorf("target: %w", err))
	}
	defer dst.Close()
	// Shared locks on both: other backups and copies may run, a prune of either waits.
	srcLock, err := src.Lock(a.ctx, false)
	if err != nil {
		return a.fail(fmt.Errorf("source: %w", err))
	}
	defer srcLock.Unlock(a.ctx)
	dstLock, err := dst.Lock(a.ctx, false)
	if err != nil {
		return a.fail(fmt.Errorf("target: %w", err))
	}
	defer dstLock.Unlock(a.ctx)

	rep, err := repo.Copy(a.ctx, src, dst, repo.CopyOptions{
		Filter: repo.SnapshotFilter{Host: *host, Source: *source, Tag: *tag},
		Latest: *latest,
		Progress: func(p repo.CopyProgress) {
			if a.jsonOut {
				return
			}
			sn := p.Source.Snapshot
			if p.Existing {
				fmt.Fprintf(a.stdout, "%s %s %s: already in the target\n", p.Source.ID.Short(), sn.Time.Local().Format("2006-01-02 15:04:05"), sn.Source)
				return
			}
			fmt.Fprintf(a.stdout, "%s %s %s: copied as %s\n", p.Source.ID.Short(), sn.Time.Local().Format("2006-01-02 15:04:05"), sn.Source, p.Target.Short())
		},
	})
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(rep)
		return exitOK
	}
	how := ""
	if rep.Reencoded {
		how = " (re-encoded for the target's keys)"
	}
	fmt.Fprintf(a.stdout, "copy: %d snapshots copied, %d already there; %d blobs sent (%s), %d present%s\n",
		rep.Snapshots, rep.Existing, rep.BlobsSent, humanBytes(rep.BytesSent), rep.BlobsPresent, how)
	return exitOK
}
