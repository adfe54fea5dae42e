package pidmgr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// BeatDirName is the folder beside the registry that holds one heartbeat file per registered
// process, named by its pid.
const BeatDirName = FileName + ".beat"

// beatVersion is the heartbeat file's format; readers treat any other as no heartbeat.
const beatVersion = 1

// maxBeatSize bounds what is read from a heartbeat file: a real one is about 200 bytes.
const maxBeatSize = 4 << 10

// Heartbeat is what a registered process last said about itself. Kill-idle trusts it only
// when PID and Token match a live entry of the same registry, so a leftover file of a process
// that is gone, or of an earlier process with the same pid, proves nothing.
type Heartbeat struct {
	PID   int    `json:"pid"`
	Token string `json:"token"` // the start token of the registry entry it belongs to
	// Command is the job command (backup, restore, check, prune, ...); "" when not a job.
	Command string `json:"command,omitempty"`
	// KeepWhileBusy asks a newer user launch to leave this process running while it makes
	// progress (restore, check, prune); without it a newer user launch replaces it.
	KeepWhileBusy bool `json:"keep_while_busy,omitempty"`
	// Progress is a count that grows while the process works (bytes and files done); At is
	// when it last grew or the process last proved busy, UTC.
	Progress int64     `json:"progress"`
	At       time.Time `json:"at"`
}

// beatFile is the on-disk form: the heartbeat plus a version.
type beatFile struct {
	V int `json:"v"`
	Heartbeat
}

// encodeHeartbeat renders hb as one line of JSON.
func encodeHeartbeat(hb Heartbeat) ([]byte, error) {
	if err := hb.valid(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(beatFile{V: beatVersion, Heartbeat: hb})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// parseHeartbeat is the strict inverse of encodeHeartbeat: a torn, foreign or garbage file is
// an error, which kill-idle reads as "no heartbeat" (the process proves nothing).
func parseHeartbeat(data []byte) (Heartbeat, error) {
	if len(data) > maxBeatSize {
		return Heartbeat{}, fmt.Errorf("heartbeat of %d bytes is too long", len(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f beatFile
	if err := dec.Decode(&f); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat is not a JSON object: %w", err)
	}
	if dec.More() {
		return Heartbeat{}, errors.New("heartbeat has data after its JSON object")
	}
	if f.V != beatVersion {
		return Heartbeat{}, fmt.Errorf("heartbeat format v%d, want v%d", f.V, beatVersion)
	}
	if err := f.Heartbeat.valid(); err != nil {
		return Heartbeat{}, err
	}
	f.At = f.At.UTC()
	return f.Heartbeat, nil
}

func (hb Heartbeat) valid() error {
	if hb.PID <= 0 {
		return fmt.Errorf("heartbeat pid %d is not positive", hb.PID)
	}
	if err := validToken("heartbeat start token", hb.Token); err != nil {
		return err
	}
	if hb.Command != "" {
		if err := validToken("heartbeat command", hb.Command); err != nil {
			return err
		}
	}
	if hb.Progress < 0 {
		return fmt.Errorf("heartbeat progress %d is negative", hb.Progress)
	}
	if y := hb.At.UTC().Year(); y < 2000 || y > 9999 {
		return fmt.Errorf("heartbeat time %s is outside the years 2000 to 9999", hb.At)
	}
	return nil
}

func (r *Registry) beatPath(pid int) string {
	return filepath.Join(r.beatDir, strconv.Itoa(pid))
}

// writeBeat replaces the heartbeat file of hb.PID atomically (temp file and rename). It does not
// fsync: after a crash a lost heartbeat only makes the process look idle, which it then is.
func (r *Registry) writeBeat(hb Heartbeat) error {
	data, err := encodeHeartbeat(hb)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.beatDir, 0o700); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	tmp, err := os.CreateTemp(r.beatDir, ".tmp-"+strconv.Itoa(hb.PID)+"-*")
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("heartbeat: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), r.beatPath(hb.PID)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// readBeat returns the heartbeat of pid; ok is false when there is none or it cannot be read.
func (r *Registry) readBeat(pid int) (Heartbeat, bool) {
	f, err := os.Open(r.beatPath(pid))
	if err != nil {
		return Heartbeat{}, false
	}
	defer f.Close()
	buf := make([]byte, maxBeatSize+1)
	n, _ := f.Read(buf)
	hb, err := parseHeartbeat(buf[:n])
	if err != nil || hb.PID != pid {
		return Heartbeat{}, false
	}
	return hb, true
}

// pruneBeats removes the heartbeat files (and temp files left by a crash) of every pid that has
// no entry in es. Callers hold the registry lock, so a process that registers meanwhile, and
// writes its heartbeat only after its entry exists, never loses its file.
func (r *Registry) pruneBeats(es []Entry) {
	names, err := os.ReadDir(r.beatDir)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, e := range es {
		keep[strconv.Itoa(e.PID)] = true
	}
	for _, n := range names {
		if keep[n.Name()] {
			continue
		}
		if info, err := n.Info(); err == nil && n.Name()[0] == '.' && time.Since(info.ModTime()) < time.Minute {
			continue // a temp file being written right now
		}
		if err := os.Remove(filepath.Join(r.beatDir, n.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.warn(fmt.Sprintf("heartbeat: %v", err))
		}
	}
	if len(es) == 0 {
		_ = os.Remove(r.beatDir) // only succeeds when empty
	}
}

// Pulse writes this process's heartbeat (from Begin). Safe for concurrent use.
type Pulse struct {
	r  *Registry
	mu sync.Mutex
	hb Heartbeat
}

// Beat records that the process is working: progress is its running count of work done (it may
// repeat the last value when the process proved busy otherwise, e.g. by CPU time).
func (p *Pulse) Beat(progress int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hb.Progress = max(progress, 0)
	p.hb.At = p.r.clock.Now().UTC()
	return p.r.writeBeat(p.hb)
}

// Last is the heartbeat written last.
func (p *Pulse) Last() Heartbeat {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hb
}

// Heartbeat returns the last heartbeat of pid in this registry, if there is a readable one.
// It is the process's own claim: compare its Token with the entry's before trusting it.
func (r *Registry) Heartbeat(pid int) (Heartbeat, bool) { return r.readBeat(pid) }
