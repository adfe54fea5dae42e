package main

import "github.com/snapferry/snapferry/images/store"

// openRemoteBackend opens ssh:// and sftp:// stores (wired to transfer/storespec).
func (a *app) openRemoteBackend(spec string) (store.Backend, error) {
	return nil, usagef("store %q: remote stores are not wired into this build yet", spec)
}
