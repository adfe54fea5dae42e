package storespec

import (
	"errors"
	"testing"
)

// FuzzParse: any spec parses or fails with ErrBadSpec, never panics, and a parsed s3:// spec
// prints back to a spec that parses to the same thing.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/srv/repo", "ssh://u@h:22/p", "sftp://[::1]/r", "tape:///dev/nst0",
		"s3://10.0.0.5:7480/backups/site-a", "s3://h/b", "s3://[::1]:9/b-1/x/y", "s3://k:s@h/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := Parse(raw)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("Parse(%q): %v does not wrap ErrBadSpec", raw, err)
			}
			return
		}
		if s.Scheme != S3 {
			return
		}
		again, err := Parse(s.String())
		if err != nil || again != s {
			t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v, %v", raw, s, s.String(), again, err)
		}
	})
}
