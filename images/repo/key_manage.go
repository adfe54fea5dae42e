package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// KeyInfo describes one key file (never its secret).
type KeyInfo struct {
	ID      ID        `json:"id"`
	Created time.Time `json:"created"`
	Host    string    `json:"host,omitempty"`
	User    string    `json:"user,omitempty"`
	KDF     string    `json:"kdf"`
	Params  KDFParams `json:"params"`
	// Current marks the key file this Repository was opened with.
	Current bool `json:"current"`
	// Problem is set for a key file that does not decode (it cannot open the repository).
	Problem string `json:"problem,omitempty"`
}

// ErrNotEncrypted is returned by the key operations on an unencrypted repository.
var ErrNotEncrypted = errors.New("repository is not encrypted")

// Encrypted reports whether the repository seals its contents.
func (r *Repository) Encrypted() bool { return r.crypt != nil }

// AddKey stores a new key file that opens the repository with password. It is a new file: it
// works on append-only stores too.
func (r *Repository) AddKey(ctx context.Context, password []byte, p KDFParams) (ID, error) {
	if r.master == nil {
		return ID{}, fmt.Errorf("add key to %s: %w (keys exist only for `snapferry init --encrypt` repositories)", r.be.Location(), ErrNotEncrypted)
	}
	b, err := sealMasterKey(r.master, password, p, r.opts.Clock.Now())
	if err != nil {
		return ID{}, fmt.Errorf("add key to %s: %w", r.be.Location(), err)
	}
	id, err := saveFile(ctx, r.be, store.KindKeys, b, nil)
	if err != nil {
		return ID{}, fmt.Errorf("add key: %w", err)
	}
	return id, nil
}

// ListKeys returns every key file, oldest first.
func (r *Repository) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	if r.master == nil {
		return nil, fmt.Errorf("list keys of %s: %w", r.be.Location(), ErrNotEncrypted)
	}
	files, err := listFiles(ctx, r.be, store.KindKeys)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(files))
	for _, f := range files {
		ki := KeyInfo{ID: f.ID, Current: f.ID == r.keyID, Created: f.ModTime}
		b, err := loadFile(ctx, r.be, store.Handle{Kind: store.KindKeys, Name: f.ID.String()}, nil)
		var kf *keyFile
		if err == nil {
			kf, err = decodeKeyFile(b)
		}
		if err != nil {
			ki.Problem = err.Error()
		} else {
			ki.Created, ki.Host, ki.User, ki.KDF, ki.Params = kf.Created, kf.Host, kf.User, kf.KDF, kf.KDFParams
		}
		out = append(out, ki)
	}
	sortKeys(out)
	return out, nil
}

func sortKeys(keys []KeyInfo) {
	slices.SortStableFunc(keys, func(a, b KeyInfo) int { return a.Created.Compare(b.Created) })
}

// RemoveKey deletes a key file. It refuses the key this Repository was opened with (open with
// another password to remove it, so a typo cannot lock everyone out) and hence the last key.
func (r *Repository) RemoveKey(ctx context.Context, id ID) error {
	if r.master == nil {
		return fmt.Errorf("remove key: %w", ErrNotEncrypted)
	}
	if id == r.keyID {
		return fmt.Errorf("remove key %s: it is the key this command opened the repository with; "+
			"open with another key's password to remove it", id.Short())
	}
	keys, err := listIDs(ctx, r.be, store.KindKeys)
	if err != nil {
		return fmt.Errorf("remove key %s: %w", id.Short(), err)
	}
	found := false
	for _, k := range keys {
		found = found || k == id
	}
	switch {
	case !found:
		return fmt.Errorf("remove key %s: no such key file (see `snapferry key list`)", id.Short())
	case len(keys) < 2:
		return fmt.Errorf("remove key %s: it is the repository's last key", id.Short())
	}
	if err := r.be.Remove(ctx, store.Handle{Kind: store.KindKeys, Name: id.String()}); err != nil {
		return fmt.Errorf("remove key %s: %w", id.Short(), err)
	}
	return nil
}
