package pidmgr

import (
	"bufio"
	"errors"
	"io"
)

// lineReader yields lines of any length, keeping at most max bytes of each. bufio.Scanner fails
// on a line longer than its buffer, and one process with a huge command line must not make the
// whole process table unreadable.
type lineReader struct {
	r   *bufio.Reader
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its "\n", or io.EOF after the last one.
func (l *lineReader) next() (string, error) {
	var line []byte
	read := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(chunk) > 0 {
			read = true
			if room := l.max - len(line); room > 0 {
				line = append(line, chunk[:min(room, len(chunk))]...)
			}
		}
		switch {
		case err == nil:
			// ReadSlice stops at the first "\n", so a kept "\n" can only be the last byte.
			if n := len(line); n > 0 && line[n-1] == '\n' {
				line = line[:n-1]
			}
			return string(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && read:
			return string(line), nil
		default:
			return "", err
		}
	}
}
