package esxi

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
)

var (
	clonePctRe  = regexp.MustCompile(`Clone: (\d{1,3})% done\.`)
	cloneFailRe = regexp.MustCompile(`^(Failed to .*?)(?: \((\d+)\))?\.?$`)
)

// CloneResult is what `vmkfstools -i SRC -d thin DST` printed. Success is judged by the exit
// status only: in a redirected log the last progress value is often below 100%.
type CloneResult struct {
	LastPercent int      // last "Clone: N% done." seen, -1 if none
	Failure     string   // "Failed to clone disk : No space left on device" (code stripped)
	Code        int      // the number in parentheses after a failure, 0 if none
	Notes       []string // other lines ("Destination disk format: ...", deprecation notices)
}

// NoSpaceCode is the vmkfstools error number of "No space left on device".
const NoSpaceCode = 1835017

// ParseCloneOutput parses vmkfstools output whose progress is one line rewritten with "\r".
func ParseCloneOutput(out string) CloneResult {
	r := CloneResult{LastPercent: -1}
	for _, piece := range strings.FieldsFunc(out, func(c rune) bool { return c == '\r' || c == '\n' }) {
		piece = strings.TrimSpace(piece)
		if piece == "" {
			continue
		}
		if m := clonePctRe.FindAllStringSubmatch(piece, -1); m != nil {
			r.LastPercent, _ = strconv.Atoi(m[len(m)-1][1])
			continue
		}
		if m := cloneFailRe.FindStringSubmatch(piece); m != nil {
			r.Failure = strings.TrimSpace(m[1])
			r.Code, _ = strconv.Atoi(m[2])
			continue
		}
		r.Notes = append(r.Notes, piece)
	}
	return r
}

// ProgressWriter is an io.Writer for vmkfstools' output that calls fn with each new percentage as
// it arrives, across "\r" rewrites and writes split anywhere. It also keeps the whole output.
type ProgressWriter struct {
	fn   func(pct int)
	mu   sync.Mutex
	all  strings.Builder
	tail string
	last int
}

// NewProgressWriter returns a writer reporting to fn (which may be nil).
func NewProgressWriter(fn func(pct int)) *ProgressWriter { return &ProgressWriter{fn: fn, last: -1} }

func (w *ProgressWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	buf := w.tail + string(p)
	cut := strings.LastIndexAny(buf, "\r\n")
	if cut < 0 {
		w.tail = buf
		return len(p), nil
	}
	w.tail = buf[cut+1:]
	for _, m := range clonePctRe.FindAllStringSubmatch(buf[:cut], -1) {
		if pct, err := strconv.Atoi(m[1]); err == nil && pct != w.last {
			w.last = pct
			if w.fn != nil {
				w.fn(pct)
			}
		}
	}
	return len(p), nil
}

// String returns everything written so far.
func (w *ProgressWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}
