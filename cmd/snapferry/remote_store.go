package main

import (
	"errors"
	"io"
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/ratelimit"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// openRemoteBackend opens ssh:// and sftp:// stores: ssh:// deploys this binary when the far
// side lacks it and runs `snapferry serve` there; sftp:// runs the repository logic here.
func (a *app) openRemoteBackend(spec string) (store.Backend, error) {
	var be store.Backend
	var err error
	if e := a.takeEarlyStore(spec); e != nil {
		be, err = e.Take()
	} else {
		be, err = storespec.Open(a.ctx, spec, a.storeOptions(spec))
	}
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
		Trace:            a.wireTrace(),
		MetaCache:        a.metaCacheDirFor(spec, "ssh://"),
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

// metaCacheDir is the folder of the index/snapshot caches of remote stores in the state folder,
// or "" without a state folder (the stores then work uncached).
func (a *app) metaCacheDir() string {
	dir, err := a.stateDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "cache", "meta")
}

// metaCacheDirFor is metaCacheDir for a spec of the given scheme prefix, "" for other specs
// (an ssh:// store looks for the state folder, a local one does not). Commands that judge the
// store's own files (storeCopies) get no cache for ssh://; s3:// keeps its cache as before.
func (a *app) metaCacheDirFor(spec, scheme string) string {
	if !strings.HasPrefix(strings.ToLower(spec), scheme) || a.storeCopies && scheme == "ssh://" {
		return ""
	}
	return a.metaCacheDir()
}
