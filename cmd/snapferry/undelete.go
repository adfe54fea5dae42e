package main

import (
	"fmt"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/s3store"
)

// runUndelete is `snapferry undelete --repo=s3://… --since=TIME`: on an Object Lock bucket,
// bring back the repository files removed since TIME (their versions are retained behind delete
// markers): the way back after a stolen key was used to delete backups.
func runUndelete(a *app, args []string) int {
	repoFlag := a.addRepoFlag()
	since := a.flags.String("since", "", "bring back files removed after this time (RFC 3339, or 2006-01-02 15:04 local time)")
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("undelete takes no arguments, got %q", pos))
	}
	t, err := parseSince(*since)
	if err != nil {
		return a.fail(err)
	}
	spec, err := repoSpec(*repoFlag, "repo")
	if err != nil {
		return a.fail(err)
	}
	be, err := a.openBackend(spec)
	if err != nil {
		return a.fail(err)
	}
	defer be.Close()
	s, ok := s3Below(be)
	if !ok {
		return a.fail(usagef("undelete works on s3:// repositories on an Object Lock bucket; %s is not one", spec))
	}
	n, err := s.Undelete(a.ctx, t)
	if err != nil {
		return a.fail(err)
	}
	fmt.Fprintf(a.stdout, "undelete: %d files removed since %s are back; run `snapferry check` next\n", n, t.Local().Format("2006-01-02 15:04"))
	return exitOK
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
