package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/s3store"
)

func newUndeleteCmd(a *app) *cobra.Command {
	var repoFlag *string
	var since string
	c := &cobra.Command{
		Use:   "undelete --repo=s3://... --since=TIME",
		Short: "bring back files removed from an S3 Object Lock repository",
		Long: "Undelete brings back, on an S3 Object Lock bucket, the repository files removed since TIME (their\n" +
			"versions are retained behind delete markers): the way back after a stolen key was used to\n" +
			"delete backups (docs/object-storage.md).",
		Example: "  snapferry undelete --repo=s3://bucket/snapferry --since=\"2026-11-20 00:00\"",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.undelete(*repoFlag, &since) },
	}
	repoFlag = a.addRepoFlag(c.Flags())
	c.Flags().StringVar(&since, "since", "", "bring back files removed after this time (RFC 3339, or 2006-01-02 15:04 local time)")
	a.addHostFlag(c)
	return c
}

// undelete is `snapferry undelete --repo=s3://… --since=TIME`: on an Object Lock bucket, bring
// back the repository files removed since TIME.
func (a *app) undelete(repoFlagValue string, since *string) error {
	repoFlag := &repoFlagValue
	t, err := parseSince(*since)
	if err != nil {
		return err
	}
	spec, err := repoSpec(*repoFlag, "repo")
	if err != nil {
		return err
	}
	be, err := a.openBackend(spec)
	if err != nil {
		return err
	}
	defer be.Close()
	s, ok := s3Below(be)
	if !ok {
		return usagef("undelete works on s3:// repositories on an Object Lock bucket; %s is not one", spec)
	}
	n, err := s.Undelete(a.ctx, t)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "undelete: %d files removed since %s are back; run `snapferry check` next\n", n, t.Local().Format("2006-01-02 15:04"))
	return nil
}

func parseSince(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, usagef("undelete needs --since=TIME: files removed after it come back")
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", v, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--since=%q: want RFC 3339 (2026-12-01T08:00:00Z) or 2026-12-01 08:00", v)
}

// s3Below finds the s3 store below be's wrappers (rate limit, cache).
func s3Below(be store.Backend) (*s3store.Store, bool) {
	for be != nil {
		if s, ok := be.(*s3store.Store); ok {
			return s, true
		}
		u, ok := be.(store.Unwrapper)
		if !ok {
			return nil, false
		}
		be = u.Unwrap()
	}
	return nil, false
}
