package repo

// BlobLen returns the plaintext length of a stored blob, from the index alone (no load). ok is
// false when the blob is unknown or stored as a patch (its index length is the patch's). A
// mounted snapshot uses it to find which chunk of a file holds an offset without loading the
// chunks before it.
func (r *Repository) BlobLen(t BlobType, id ID) (n int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, found := r.idx.lookup(id)
	if !found || e.comp&compPatch != 0 || e.typ != t {
		return 0, false
	}
	return int64(e.raw), true
}
