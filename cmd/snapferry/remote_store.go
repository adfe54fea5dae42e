package main

import (
	"errors"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// openRemoteBackend opens ssh:// and sftp:// stores: ssh:// deploys this binary when the far
// side lacks it and runs `snapferry serve` there; sftp:// runs the repository logic here.
func (a *app) openRemoteBackend(spec string) (store.Backend, error) {
	o := storespec.Options{
		KnownHosts:       a.ssh.KnownHosts,
		AcceptNewHostKey: a.ssh.AcceptNewHostKey,
		RemotePath:       a.ssh.RemotePath,
		Version:          version,
		Create:           a.cmd == "init",
		ServeLog:         a.stderr,
	}
	if a.ssh.Identity != "" {
		o.Identity = []string{a.ssh.Identity}
	}
	be, err := storespec.Open(a.ctx, spec, o)
	if errors.Is(err, storespec.ErrBadSpec) {
		return nil, usageError{err.Error()}
	}
	return be, err
}
