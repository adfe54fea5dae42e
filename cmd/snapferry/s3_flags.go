package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/transfer/storespec"
)

// addS3Flags registers the options of s3:// stores on every command that takes a repository
// (called from addSSHFlags). Credentials have no flag on purpose: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY or ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE), never argv.
func (a *app) addS3Flags(fs *pflag.FlagSet) {
	fs.BoolVar(&a.s3.InsecureHTTP, "s3-insecure-http", false, "speak plain http to s3:// stores (private networks only)")
	fs.StringVar(&a.s3.CAFile, "s3-ca-file", "", "PEM file of CA certificates to trust for s3:// stores")
	fs.StringVar(&a.s3.Region, "s3-region", "", "region of s3:// buckets (default us-east-1)")
	fs.IntVar(&a.s3.Connections, "s3-connections", 0, "requests in flight at once to an s3:// store (default 8)")
}

// addS3LockFlag registers init's --s3-object-lock.
func (a *app) addS3LockFlag(fs *pflag.FlagSet) {
	fs.Var(lockDuration{&a.s3.LockFor}, "s3-object-lock", "write every object with Object Lock retention this long, e.g. 30d (needs a bucket with Object Lock; init creates one)")
}

// s3Options are the --s3-* flags plus the folder of the index/snapshot cache in the state folder
// (without a state folder the store works uncached). Only an s3:// spec looks for the folder.
func (a *app) s3Options(spec string) storespec.S3Options {
	o := a.s3
	o.MetaCache = a.metaCacheDirFor(spec, "s3://")
	return o
}

// lockDuration is a retention like 30d, 12h or 90m.
type lockDuration struct{ d *time.Duration }

func (l lockDuration) String() string {
	if l.d == nil || *l.d == 0 {
		return ""
	}
	return l.d.String()
}

func (l lockDuration) Type() string { return "duration" }

func (l lockDuration) Set(s string) error {
	d, err := parseDays(s)
	if err != nil {
		return err
	}
	if d < 24*time.Hour {
		return fmt.Errorf("%q: Object Lock retention is counted in days; give at least 1d", s)
	}
	*l.d = d
	return nil
}

// parseDays reads Nd (days) or a Go duration.
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("%q: want a number of days like 30d", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a duration like 30d or 720h", s)
	}
	return d, nil
}
