package history

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxLineLen bounds one line: Append never writes more than a few KiB, so anything longer is
// garbage and is skipped rather than held in memory.
const maxLineLen = 1 << 20

// Records returns every valid record, oldest file first and in file order within a file. Bad
// lines (torn, garbage, a newer format version) are skipped with a warning.
func (l *Log) Records(ctx context.Context) ([]Record, error) {
	fl, err := l.lock(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", l.path, err)
	}
	defer fl.Unlock()
	return l.readAll()
}

// readAll reads every file, oldest first; the caller holds a lock.
func (l *Log) readAll() ([]Record, error) {
	var out []Record
	for i := l.keep; i >= 0; i-- {
		path := l.path
		if i > 0 {
			path = l.rotated(i)
		}
		recs, err := l.readFile(path)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

func (l *Log) readFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read job history %s: %w", path, err)
	}
	defer f.Close()
	var out []Record
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read job history %s line %d: %w", path, n, err)
		}
		if errors.Is(err, io.EOF) && line == "" && !tooLong {
			return out, nil
		}
		// A last line without its newline is torn when a writer died mid-write; a prefix of a
		// JSON object never parses, so a torn line is always skipped here.
		last := errors.Is(err, io.EOF)
		switch rec, perr := parseRecord(line); {
		case tooLong:
			l.warn(fmt.Sprintf("job history %s line %d skipped: longer than %d bytes", path, n, maxLineLen))
		case strings.TrimSpace(line) == "":
		case perr != nil && last:
			l.warn(fmt.Sprintf("job history %s line %d skipped: torn last line (a writer was interrupted): %v", path, n, perr))
		case perr != nil:
			l.warn(fmt.Sprintf("job history %s line %d skipped: %v", path, n, perr))
		default:
			out = append(out, rec)
		}
		if last {
			return out, nil
		}
	}
}

// readLine returns the next line without its newline; io.EOF comes with the last, unterminated
// line. A line past maxLineLen is consumed but not returned (tooLong).
func readLine(br *bufio.Reader) (line string, tooLong bool, err error) {
	var b strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if b.Len()+len(chunk) > maxLineLen {
				tooLong = true
				b.Reset()
			} else {
				b.Write(chunk)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return strings.TrimSuffix(b.String(), "\n"), tooLong, err
	}
}

func parseRecord(line string) (Record, error) {
	var rec Record
	dec := json.NewDecoder(strings.NewReader(line))
	if err := dec.Decode(&rec); err != nil {
		return Record{}, fmt.Errorf("not a JSON record: %w", err)
	}
	if dec.More() {
		return Record{}, errors.New("more than one JSON value on the line")
	}
	if rec.V != formatVersion {
		return Record{}, fmt.Errorf("format version %d; this snapferry reads version %d (upgrade snapferry)", rec.V, formatVersion)
	}
	if err := rec.validate(); err != nil {
		return Record{}, err
	}
	return rec, nil
}
