package repo

import "sort"

// keyRun is a compact run (index_spill.go) kept in blocks of runBlock keys instead of one array.
// Merging two runs into a third then frees the inputs block by block as it consumes them: with
// one array per run, the biggest merge of a first backup held both inputs and the output at
// once, twice the index (16 bytes per blob at 500 000 files, the peak of the run). The base
// loaded at Open is positional instead (index_spill_base.go): its records are in the spill file
// in its order, so it keeps only the prefixes, in one array freed once merged whole.
type keyRun struct {
	blocks [][]spillKey
	n      int
	// pre, for a positional run, are the prefixes of its keys; key i's record is pos0+i.
	pre  *basePrefixes
	pos0 uint32
	// flat is the bytes of a positional run's array (0: blocks of their own).
	flat int
}

// runBlock is the keys per block: 32 KiB, small against the index, big enough that a run of
// a million blobs has only 245 blocks.
const runBlock = 4096

// positionalRun wraps sorted prefixes whose records are first, first+1, ... in the spill file.
func (x *index) positionalRun(pre *basePrefixes, first uint32) keyRun {
	r := keyRun{n: pre.len(), pre: pre, pos0: first, flat: pre.bytes()}
	x.keyBytesHeld(r.flat)
	return r
}

func (r *keyRun) at(i int) spillKey {
	if r.pre != nil {
		return spillKey{pfx: r.pre.at(i), ref: r.pos0 + uint32(i)}
	}
	return r.blocks[i/runBlock][i%runBlock]
}

// bytes is the memory the run's keys take (blocks by capacity).
func (r *keyRun) bytes() int {
	if r.flat > 0 {
		return r.flat
	}
	n := 0
	for _, b := range r.blocks {
		n += cap(b) * spillKeySize
	}
	return n
}

// push appends a key; x counts a new block.
func (x *index) push(r *keyRun, k spillKey) {
	if r.n%runBlock == 0 {
		r.blocks = append(r.blocks, make([]spillKey, 0, runBlock))
		x.keyBytesHeld(runBlock * spillKeySize)
	}
	last := &r.blocks[len(r.blocks)-1]
	*last = append(*last, k)
	r.n++
}

// trim gives a finished run's last block its length as capacity: a run of a few keys (the
// newest runs are small) must not hold a whole block.
func (x *index) trim(r *keyRun) {
	if len(r.blocks) == 0 || r.flat > 0 {
		return
	}
	last := &r.blocks[len(r.blocks)-1]
	if len(*last) == cap(*last) {
		return
	}
	x.keyBytesHeld((len(*last) - cap(*last)) * spillKeySize)
	*last = append(make([]spillKey, 0, len(*last)), *last...)
}

// keyBytesHeld adds d to the bytes of key blocks reachable, and keeps their peak: the
// figure tests hold against the blob count (no RSS in tests).
func (x *index) keyBytesHeld(d int) {
	x.keyBytes += d
	x.peakKeyBytes = max(x.peakKeyBytes, x.keyBytes)
}

// runReader consumes a run in order, dropping each block once read past (a positional run's
// array is dropped whole, by the merge, at its end).
type runReader struct {
	x *index
	r *keyRun
	i int
}

func (c *runReader) more() bool     { return c.i < c.r.n }
func (c *runReader) peek() spillKey { return c.r.at(c.i) }
func (c *runReader) next() (k spillKey) {
	k = c.r.at(c.i)
	c.i++
	if c.i%runBlock == 0 || c.i == c.r.n {
		if c.r.flat == 0 {
			c.x.keyBytesHeld(-cap(c.r.blocks[(c.i-1)/runBlock]) * spillKeySize)
			c.r.blocks[(c.i-1)/runBlock] = nil
		}
	}
	return k
}

// group takes every key with prefix p, appending them to buf.
func (c *runReader) group(p uint32, buf []spillKey) []spillKey {
	for c.more() && c.peek().pfx == p {
		buf = append(buf, c.next())
	}
	return buf
}

// release ends the reading of a consumed run: a positional run's array is counted free now.
func (c *runReader) release() {
	c.x.keyBytesHeld(-c.r.flat)
	*c.r = keyRun{}
}

// mergeRuns merges two compact runs, b the newer; as merge, a blob in both keeps b's copy for
// lookups and a's among the duplicates. Only keys with equal prefixes have their records read.
// Both inputs are consumed (emptied).
func (x *index) mergeRuns(a, b keyRun) keyRun {
	var out keyRun
	ra, rb := runReader{x: x, r: &a}, runReader{x: x, r: &b}
	var ga, gb []spillKey
	for ra.more() || rb.more() {
		switch {
		case !rb.more() || (ra.more() && ra.peek().pfx < rb.peek().pfx):
			x.push(&out, ra.next())
		case !ra.more() || rb.peek().pfx < ra.peek().pfx:
			x.push(&out, rb.next())
		default:
			p := ra.peek().pfx
			ga, gb = ra.group(p, ga[:0]), rb.group(p, gb[:0])
			for _, k := range gb {
				x.push(&out, k)
			}
			for _, ka := range ga {
				if x.replacedBy(ka, gb) {
					continue
				}
				x.push(&out, ka)
			}
		}
	}
	ra.release()
	rb.release()
	x.trim(&out)
	return out
}

// replacedBy reports whether the blob of key ka is among the keys newer (which share its
// prefix): then the newer copy is the one lookups give and ka's goes to the duplicates.
func (x *index) replacedBy(ka spillKey, newer []spillKey) bool {
	ida, ea, ok := x.spill.read(ka.ref)
	if !ok {
		return false
	}
	for _, kb := range newer {
		if idb, _, okb := x.spill.read(kb.ref); okb && idb == ida {
			x.dups[ida] = append([]indexEntry{ea}, x.dups[ida]...)
			return true
		}
	}
	return false
}

// findRun looks id up in a compact run.
func (x *index) findRun(run *keyRun, id ID) (indexEntry, bool) {
	p := prefixOf(id)
	var i int
	if run.pre != nil {
		i = run.pre.first(p)
	} else {
		i = sort.Search(run.n, func(i int) bool { return run.at(i).pfx >= p })
	}
	for ; i < run.n && run.at(i).pfx == p; i++ {
		if got, e, ok := x.spill.read(run.at(i).ref); ok && got == id {
			return e, true
		}
	}
	return indexEntry{}, false
}
