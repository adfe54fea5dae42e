package main

import (
	"strings"

	"github.com/snapferry/snapferry/transfer/storespec"
)

// startEarlyStore starts opening an ssh:// store in the background (storespec.StartOpen), so
// the link is up while the command does its local work; openRemoteBackend takes it. Other
// schemes open fast or not at all over SSH and are left alone. Call the returned func when the
// command ends: it closes the link if nothing took it.
func (a *app) startEarlyStore(spec string) func() {
	if !strings.HasPrefix(spec, "ssh://") || a.early != nil {
		return func() {}
	}
	e := storespec.StartOpen(a.ctx, spec, a.storeOptions(spec))
	a.early = e
	return func() {
		if a.early == e {
			a.early = nil
		}
		e.Discard()
	}
}

// takeEarlyStore hands over the store startEarlyStore is opening for spec, or nil: then open it
// now.
func (a *app) takeEarlyStore(spec string) *storespec.Early {
	e := a.early
	if e == nil || e.Spec() != spec {
		return nil
	}
	a.early = nil
	return e
}
