package main

import "github.com/snapferry/snapferry/images/repo"

// addCompressionFlag registers --compression on commands that write blobs (backup, init); the
// value is checked by compressionChoice after parsing.
func (a *app) addCompressionFlag(usage string) *string {
	return a.flags.String("compression", "", usage+": auto (zstd after a cheap probe; the default), "+
		"fast (S2: several times faster, ~15% bigger), max (zstd's better level: smaller, slower) or off")
}

// compressionChoice parses a --compression value; a bad word is a usage error.
func compressionChoice(word string) (repo.Compression, error) {
	c, err := repo.ParseCompression(word)
	if err != nil {
		return "", usagef("--compression=%q: want auto, fast, max or off", word)
	}
	return c, nil
}
