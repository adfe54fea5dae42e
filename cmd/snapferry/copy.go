package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

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

func newCopyCmd(a *app) *cobra.Command {
	var o copyOptions
	c := &cobra.Command{
		Use:   "copy --from=REPO --to=REPO [options]",
		Short: "copy snapshots to another repository (any kind), sending what it lacks",
		Long: "Copy copies the snapshots of one repository into another of any kind (folder, ssh://, sftp://,\n" +
			"s3://), sending only the data the target lacks; encrypted sources and targets are re-encoded\n" +
			"for the target's keys. The filters narrow what is copied.",
		Example: "  snapferry copy --from=/backup/repo --to=ssh://backup@offsite/snapferry\n" +
			"  snapferry copy --from=/backup/repo --to=s3://bucket/snapferry --latest=1 --source=web01",
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return a.copy(o) },
	}
	fs := c.Flags()
	a.addSSHFlags(fs)
	a.addPasswordFlag(fs) // the target's
	fs.StringVar(&o.from, "from", "", "repository to copy from")
	fs.StringVar(&o.to, "to", "", "repository to copy to (env SNAPFERRY_REPO)")
	fs.StringVar(&o.fromPW, flagFromPasswordFile, "", "file whose first line is the source repository's password (env "+
		envFromPasswordFile+"; or set "+envFromPassword+")")
	fs.StringVar(&o.host, "host-filter", "", "only snapshots of this host")
	fs.StringVar(&o.source, "source", "", "only snapshots of this source (VM name, path)")
	fs.StringVar(&o.tag, "tag", "", "only snapshots with this tag")
	fs.IntVar(&o.latest, "latest", 0, "only the newest N snapshots of each source")
	fs.StringVar(&o.bw, "bwlimit", "", "limit the upload rate to the target, e.g. 20M (bytes per second)")
	a.addHostFlag(c)
	return c
}

type copyOptions struct {
	from, to, fromPW, host, source, tag, bw string
	latest                                  int
}

// copy is `snapferry copy --from=REPO --to=REPO`: the snapshots of one repository into another
// of any kind (repo.Copy does the work), sending only what the target lacks.
func (a *app) copy(o copyOptions) error {
	from, to, fromPW, host, source, tag, latest, bw := &o.from, &o.to, &o.fromPW, &o.host, &o.source, &o.tag, &o.latest, &o.bw
	if *from == "" {
		return usagef("copy needs --from=REPO")
	}
	toSpec, err := repoSpec(*to, "to")
	if err != nil {
		return err
	}
	if *latest < 0 {
		return usagef("--latest=%d: want a positive count", *latest)
	}
	if *bw != "" {
		if a.bwlimit, err = ratelimit.ParseRate(*bw); err != nil {
			return usagef("--bwlimit=%q: %v (examples: 20M, 500K)", *bw, err)
		}
	}

	src, err := a.openCopySource(*from, *fromPW)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := a.openRepo(toSpec, true)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer dst.Close()
	// Shared locks on both: other backups and copies may run, a prune of either waits.
	srcLock, err := src.Lock(a.ctx, false)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer srcLock.Unlock(a.ctx)
	dstLock, err := dst.Lock(a.ctx, false)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer dstLock.Unlock(a.ctx)
	a.resume(dst) // a killed copy's packs count as sent

	rep, err := repo.Copy(a.ctx, src, dst, repo.CopyOptions{
		Filter:   repo.SnapshotFilter{Host: *host, Source: *source, Tag: *tag},
		Latest:   *latest,
		Progress: a.printCopyProgress,
	})
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.printJSON(rep)
		return nil
	}
	how := ""
	if rep.Reencoded {
		how = " (re-encoded for the target's keys)"
	}
	fmt.Fprintf(a.stdout, "copy: %s copied, %d already there; %s sent (%s), %d present%s\n",
		plural(rep.Snapshots, "snapshot"), rep.Existing, plural(int(rep.BlobsSent), "blob"), humanBytes(rep.BytesSent), rep.BlobsPresent, how)
	return nil
}

// openCopySource opens the source repository from, with the password its own flag or
// environment gives; an encrypted one without a password names where to give it.
func (a *app) openCopySource(from, pwFile string) (*repo.Repository, error) {
	pw, err := passwordFrom(pwFile, envFromPasswordFile, envFromPassword, "--"+flagFromPasswordFile)
	if err != nil {
		return nil, err
	}
	srcBe, err := a.openBackend(from)
	if err != nil {
		return nil, err
	}
	src, err := repo.Open(a.ctx, srcBe, repo.Options{Password: pw})
	if err != nil {
		srcBe.Close()
		if errors.Is(err, repo.ErrNoPassword) {
			return nil, fmt.Errorf("source %s is encrypted: give its password in --%s, $%s or $%s: %w",
				from, flagFromPasswordFile, envFromPasswordFile, envFromPassword, err)
		}
		return nil, fmt.Errorf("source: %w", err)
	}
	return src, nil
}

// printCopyProgress prints one line per snapshot copied or found in the target (none with
// --json).
func (a *app) printCopyProgress(p repo.CopyProgress) {
	if a.jsonOut {
		return
	}
	sn := p.Source.Snapshot
	if p.Existing {
		fmt.Fprintf(a.stdout, "%s %s %s: already in the target\n", p.Source.ID.Short(), sn.Time.Local().Format("2006-01-02 15:04:05"), sn.Source)
		return
	}
	fmt.Fprintf(a.stdout, "%s %s %s: copied as %s\n", p.Source.ID.Short(), sn.Time.Local().Format("2006-01-02 15:04:05"), sn.Source, p.Target.Short())
}
