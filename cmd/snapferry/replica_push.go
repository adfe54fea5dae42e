package main

import (
	"context"
	"errors"

	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/storespec"
	"github.com/snapferry/snapferry/transfer/wire"
)

// replicaLink opens the wire session to the snapferry serve at to (ssh://) that replicas are
// pushed over, with what the server announced (its root, its capabilities); closeLink ends it.
func (a *app) replicaLink(to string) (*wire.Session, wire.HelloReply, func() error, error) {
	sess, server, closeLink, err := storespec.OpenSessionServer(a.ctx, to, a.storeOptions(to))
	if errors.Is(err, storespec.ErrBadSpec) {
		return nil, wire.HelloReply{}, nil, asUsage(err)
	}
	return sess, server, closeLink, err
}

// pushSet pushes one VM's replica set over sess with o, its progress shown on prog as a share
// of total bytes. replica.Push reports running totals; the renderer counts increments.
func pushSet(ctx context.Context, prog *renderer, sess *wire.Session, set string, files []replica.File, total int64, o replica.Options) (replica.Stats, error) {
	prog.Start(set, total)
	var seen int64
	o.Progress = func(s replica.Stats) {
		prog.Add(s.BytesScanned - seen)
		seen = s.BytesScanned
	}
	st, err := replica.Push(ctx, sess, set, files, o)
	if err == nil {
		prog.Done()
	}
	return st, err
}
