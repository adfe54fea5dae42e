package sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Event is one line of the simulator's journal (ROOT/.esxisim/events.log). Every state change
// that matters to a test is journaled under the host lock, so the journal orders guest writes and
// snapshot freezes exactly as they happened: a test replays the writes before a snapshot's
// "snapshot-create" event to know the disk as that snapshot froze it.
type Event struct {
	Seq    int
	Op     string            // write, snapshot-create, snapshot-remove, power-on, power-off, register, unregister, clone
	Fields map[string]string // vm, disk, off, len, seed, name, id...
}

func (h *Host) eventsPath() string { return filepath.Join(h.meta, "events.log") }

// event appends a journal line; fields are key, value pairs. Values are quoted with %q so names
// with spaces survive.
func (s *session) event(op string, kv ...string) error {
	s.st.EventSeq++
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", s.st.EventSeq, op)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %s=%q", kv[i], kv[i+1])
	}
	b.WriteByte('\n')
	f, err := os.OpenFile(s.h.eventsPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("journal %s: %w", op, err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		return fmt.Errorf("journal %s: %w", op, err)
	}
	return nil
}

// Events reads the journal in order.
func (h *Host) Events() ([]Event, error) {
	b, err := os.ReadFile(h.eventsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var out []Event
	for n, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		ev, err := parseEvent(line)
		if err != nil {
			return nil, fmt.Errorf("read journal line %d: %w", n+1, err)
		}
		out = append(out, ev)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func parseEvent(line string) (Event, error) {
	seqS, rest, _ := strings.Cut(line, " ")
	seq, err := strconv.Atoi(seqS)
	if err != nil {
		return Event{}, fmt.Errorf("%q: bad sequence number", line)
	}
	op, rest, _ := strings.Cut(rest, " ")
	ev := Event{Seq: seq, Op: op, Fields: map[string]string{}}
	for rest != "" {
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			return Event{}, fmt.Errorf("%q: field without =", line)
		}
		q, err := strconv.QuotedPrefix(v)
		if err != nil {
			return Event{}, fmt.Errorf("%q: %w", line, err)
		}
		ev.Fields[k], _ = strconv.Unquote(q)
		rest = strings.TrimPrefix(v[len(q):], " ")
	}
	return ev, nil
}
