package main

import (
	"errors"
	"io"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/ratelimit"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// openRemoteBackend opens ssh:// and sftp:// stores: ssh:// deploys this binary when the far
// side lacks it and runs `snapferry serve` there; sftp:// runs the repository logic here.
func (a *app) openRemoteBackend(spec string) (store.Backend, error) {
	be, err := storespec.Open(a.ctx, spec, a.storeOptions(spec))
	if errors.Is(err, storespec.ErrBadSpec) {
		return nil, asUsage(err)
	}
	return be, err
}

// storeOptions are the SSH, deploy and bandwidth options of every ssh:// and sftp:// link.
func (a *app) storeOptions(spec string) storespec.Options {
	o := storespec.Options{
		KnownHosts:       a.ssh.KnownHosts,
		AcceptNewHostKey: a.ssh.AcceptNewHostKey,
		RemotePath:       a.ssh.RemotePath,
		Version:          version,
		Create:           a.createStore,
		S3:               a.s3Options(spec),
		// No ServeLog: the far side's routine lines (session started) would be noise on every
		// command; storespec keeps its last words for error messages.
	}
	if a.bwlimit > 0 {
		l := ratelimit.NewLimiter(a.bwlimit, nil)
		o.S3.Limiter = l // s3:// paces its request bodies (a pack is sent in place, see openBackend)
		o.Upload = func(w io.WriteCloser) io.WriteCloser {
			return struct {
				io.Writer
				io.Closer
			}{ratelimit.NewWriter(a.ctx, w, l), w}
		}
	}
	if a.ssh.Identity != "" {
		o.Identity = []string{a.ssh.Identity}
	}
	return o
}
