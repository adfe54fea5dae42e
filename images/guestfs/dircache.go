package guestfs

// dirCache remembers the name -> inode maps of the last few folders looked up, so restoring or
// listing a folder of N files reads the folder once, not once per file (every Lstat and Open
// walks its path from the root). Calls are serialised by the guard, so it needs no lock.
type dirCache struct {
	keys []string
	maps []map[string]uint64
}

const dirCacheSize = 8

func (c *dirCache) get(dir string) (map[string]uint64, bool) {
	for i, k := range c.keys {
		if k == dir {
			return c.maps[i], true
		}
	}
	return nil, false
}

func (c *dirCache) put(dir string, m map[string]uint64) {
	if len(c.keys) >= dirCacheSize {
		c.keys, c.maps = c.keys[1:], c.maps[1:]
	}
	c.keys = append(c.keys, dir)
	c.maps = append(c.maps, m)
}
