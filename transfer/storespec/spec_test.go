package storespec

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	good := []struct {
		in   string
		want Spec
		str  string
	}{
		{"/srv/repo", Spec{Scheme: Local, Path: "/srv/repo"}, ""},
		{"repo", Spec{Scheme: Local, Path: "repo"}, ""},
		{"ssh://nas/srv/repo", Spec{Scheme: SSH, Host: "nas", Path: "/srv/repo"}, ""},
		{"ssh://backup@nas:2222/srv/repo", Spec{Scheme: SSH, User: "backup", Host: "nas", Port: 2222, Path: "/srv/repo"}, ""},
		{"ssh://nas/~/repo", Spec{Scheme: SSH, Host: "nas", Path: "~/repo"}, ""},
		{"SFTP://u@10.0.0.9/vol1/bk", Spec{Scheme: SFTP, User: "u", Host: "10.0.0.9", Path: "/vol1/bk"}, "sftp://u@10.0.0.9/vol1/bk"},
		{"sftp://[fe80::1]:22/r", Spec{Scheme: SFTP, Host: "fe80::1", Port: 22, Path: "/r"}, ""},
		{"ssh://[::1]/r", Spec{Scheme: SSH, Host: "::1", Path: "/r"}, ""},
		{"ssh://nas/srv/my%20repo", Spec{Scheme: SSH, Host: "nas", Path: "/srv/my repo"}, "ssh://nas/srv/my repo"},
		{"tape://root@tapehost/dev/nst0", Spec{Scheme: Tape, User: "root", Host: "tapehost", Path: "/dev/nst0"}, ""},
		{"tape:///dev/nst0", Spec{Scheme: Tape, Path: "/dev/nst0"}, ""},
		{"s3://rgw.lan/backups", Spec{Scheme: S3, Host: "rgw.lan", Path: "backups"}, ""},
		{"s3://10.0.0.5:7480/backups/site-a/vms/", Spec{Scheme: S3, Host: "10.0.0.5", Port: 7480, Path: "backups/site-a/vms"}, "s3://10.0.0.5:7480/backups/site-a/vms"},
		{"S3://[::1]:9000/b-1.x", Spec{Scheme: S3, Host: "::1", Port: 9000, Path: "b-1.x"}, "s3://[::1]:9000/b-1.x"},
	}
	for _, g := range good {
		got, err := Parse(g.in)
		if err != nil || got != g.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", g.in, got, err, g.want)
			continue
		}
		want := g.str
		if want == "" {
			want = g.in
		}
		if got.String() != want {
			t.Errorf("Parse(%q).String() = %q, want %q", g.in, got.String(), want)
		}
	}
	bad := []string{"", "  ", "ftp://h/p", "ssh://host", "ssh:///srv", "ssh://h:0/p", "ssh://h:70000/p",
		"ssh://h:x/p", "ssh://@h/p", "ssh://h/", "ssh://h/~", "ssh:host/p", "sftp://a b/p", "ssh://h/p\n",
		"ssh://[::1/p", "sftp:///p", "s3://h", "s3://h/", "s3:///bucket", "s3://key:secret@h/bucket", "s3:h/bucket",
		"s3://h/UPPER", "s3://h/ab", "s3://h/bucket//x", "s3://h/bucket/../x", "s3://h:0/bucket"}
	for _, b := range bad {
		if s, err := Parse(b); !errors.Is(err, ErrBadSpec) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrBadSpec", b, s, err)
		}
	}
}

func TestServePath(t *testing.T) {
	for in, want := range map[string]string{"~/repo": "repo", "~": ".", "/srv/r": "/srv/r"} {
		if got := servePath(in); got != want {
			t.Errorf("servePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestS3Parts(t *testing.T) {
	s, err := Parse("s3://[::1]:9000/bkt/a/b")
	if err != nil {
		t.Fatal(err)
	}
	if s.Bucket() != "bkt" || s.Prefix() != "a/b" || s.Endpoint() != "[::1]:9000" {
		t.Errorf("bucket %q prefix %q endpoint %q", s.Bucket(), s.Prefix(), s.Endpoint())
	}
}
