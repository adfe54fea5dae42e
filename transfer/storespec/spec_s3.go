package storespec

import (
	"fmt"
	"regexp"
	"strings"
)

// bucketName is S3's rule for bucket names (3-63 lowercase letters, digits, dots, hyphens).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// parseS3 reads s3://HOST[:PORT]/BUCKET[/PREFIX]. Path holds BUCKET[/PREFIX] without the leading
// slash. Credentials in the URL are refused: they would show in ps and in job definitions.
func parseS3(raw, rest string) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("%w %q: %s", ErrBadSpec, raw, fmt.Sprintf(format, args...))
	}
	authority, p, _ := strings.Cut(rest, "/")
	if strings.Contains(authority, "@") {
		return bad("no credentials in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or use ~/.aws/credentials")
	}
	if authority == "" {
		return bad("no host; s3://HOST[:PORT]/BUCKET[/PREFIX]")
	}
	s := Spec{Scheme: S3}
	if err := parseHostPort(&s, authority); err != nil {
		return bad("%v", err)
	}
	p = strings.Trim(p, "/")
	bucket, prefix, _ := strings.Cut(p, "/")
	if bucket == "" {
		return bad("no bucket after the host; e.g. s3://%s/backups", authority)
	}
	if !bucketName.MatchString(bucket) {
		return bad("bucket %q: S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens", bucket)
	}
	for _, part := range strings.Split(prefix, "/") {
		if prefix != "" && (part == "" || part == "." || part == "..") {
			return bad("prefix %q has an empty, . or .. element", prefix)
		}
	}
	s.Path = p
	return s, nil
}

// Bucket and Prefix split an s3:// spec's path.
func (s Spec) Bucket() string { b, _, _ := strings.Cut(s.Path, "/"); return b }

// Prefix is the folder in the bucket ("" = the bucket root).
func (s Spec) Prefix() string { _, p, _ := strings.Cut(s.Path, "/"); return p }

// Endpoint is HOST[:PORT] as an S3 client dials it.
func (s Spec) Endpoint() string {
	h := s.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if s.Port != 0 {
		h += fmt.Sprintf(":%d", s.Port)
	}
	return h
}
