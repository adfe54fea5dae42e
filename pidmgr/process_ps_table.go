package pidmgr

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// PSTable reads process facts from ESXi's `ps -c`, for hosts without /proc/PID. The output has
// the columns WID CID WorldName CommandLine (see docs/pid-registry.md and the ESXi reference).
//
// What it cannot know, and what that costs:
//   - No start time: the token is a hash of WorldName and CommandLine. A recycled id running
//     the same command line is taken for the registered process. ESXi hands out world ids in
//     increasing order (they run into the millions), so reuse within the life of a registry
//     entry is rare, but the guarantee is weaker than on Linux.
//   - No parent id: PPID is 0, so KillIdle finds no children and no ancestors on ESXi. A
//     snapferry process stops its own children when it gets SIGTERM; a SIGKILLed one leaves them.
//   - No executable path: matching is by WorldName or the base name of argv[0].
//
// One process (cartel, CID) may show several worlds (threads); its pid is the CID and its facts
// come from the world whose WID equals the CID, else from the lowest WID.
type PSTable struct {
	// Command runs ps; nil means {"ps", "-c"}.
	Command []string
}

var _ ProcessTable = (*PSTable)(nil)

func (t *PSTable) command() []string {
	if len(t.Command) == 0 {
		return []string{"ps", "-c"}
	}
	return t.Command
}

func (t *PSTable) Processes(ctx context.Context) ([]Process, error) {
	worlds, err := t.worlds(ctx)
	if err != nil {
		return nil, err
	}
	return groupWorlds(worlds), nil
}

// worlds runs ps and parses its lines.
func (t *PSTable) worlds(ctx context.Context) ([]pscWorld, error) {
	argv := t.command()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("run %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	ws, err := parsePSCWorlds(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("read output of %s: %w", strings.Join(argv, " "), err)
	}
	return ws, nil
}

// Lookup finds the process whose cartel id is pid, or failing that the process owning the world
// with id pid: whether getpid() on ESXi yields the cartel or the world id, this process is found
// (and registered under its cartel id, which is what Processes lists).
func (t *PSTable) Lookup(ctx context.Context, pid int) (Process, error) {
	ws, err := t.worlds(ctx)
	if err != nil {
		return Process{}, err
	}
	ps := groupWorlds(ws)
	for _, p := range ps {
		if p.PID == pid {
			return p, nil
		}
	}
	for _, w := range ws {
		if w.wid == pid && w.cid != 0 {
			for _, p := range ps {
				if p.PID == w.cid {
					return p, nil
				}
			}
		}
	}
	return Process{}, ErrNoProcess
}

func (t *PSTable) Alive(ctx context.Context, pid int, token string) (bool, error) {
	return aliveFromLookup(ctx, t, pid, token)
}

// pscWorld is one line of `ps -c`.
type pscWorld struct {
	wid, cid int
	name     string
	cmdline  string
}

// ParsePSC parses the output of ESXi's `ps -c`. It needs the header line, because the header's
// column positions are what separate a WorldName containing spaces from the CommandLine. A line
// that is not a world continues the command line above it: an argument may hold a newline (a
// `sh -c` script, say) and ps prints it as it is. Only a line that fits nothing is an error: a
// half-understood process table must not drive kill decisions.
func ParsePSC(r io.Reader) ([]Process, error) {
	ws, err := parsePSCWorlds(r)
	if err != nil {
		return nil, err
	}
	return groupWorlds(ws), nil
}

// maxPSCLine is how much of one output line is kept. Command lines of many kilobytes exist
// (scripts passed as arguments); a world's name and ids are at the start, so the cut costs
// nothing but the tail of a command line that is only shown, never matched in full.
const maxPSCLine = 64 << 10

func parsePSCWorlds(r io.Reader) ([]pscWorld, error) {
	lines := newLineReader(r, maxPSCLine)
	nameCol, cmdCol := -1, -1
	var worlds []pscWorld
	n := 0
	for {
		raw, err := lines.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read line %d: %w", n+1, err)
		}
		n++
		line := strings.TrimRight(raw, "\r")
		if nameCol < 0 {
			if strings.TrimSpace(line) == "" {
				continue
			}
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != "WID" || f[1] != "CID" || f[2] != "WorldName" || f[3] != "CommandLine" {
				return nil, fmt.Errorf("line %d: header %q is not \"WID CID WorldName CommandLine\" (is this ESXi's `ps -c`?)", n, line)
			}
			nameCol, cmdCol = strings.Index(line, "WorldName"), strings.Index(line, "CommandLine")
			continue
		}
		w, err := parsePSCLine(line, nameCol, cmdCol)
		switch {
		case err == nil:
			worlds = append(worlds, w)
		case len(worlds) > 0:
			// The rest of the previous world's command line, after a newline in an argument.
			last := &worlds[len(worlds)-1]
			if len(last.cmdline) < maxPSCLine {
				last.cmdline += "\n" + line
			}
		case strings.TrimSpace(line) == "":
			continue
		default:
			return nil, fmt.Errorf("line %d %q: %w", n, line, err)
		}
	}
	if nameCol < 0 {
		return nil, fmt.Errorf("no header line \"WID CID WorldName CommandLine\" (empty output)")
	}
	for i := range worlds {
		worlds[i].cmdline = strings.TrimRight(worlds[i].cmdline, "\n")
	}
	return worlds, nil
}

// parsePSCLine splits one data line. When the name starts at the header's WorldName column and
// a space stands just before the CommandLine column, the columns decide (a name may contain
// spaces). A name too long for its column pushes the command line right; then the name is taken
// as the first word after CID.
func parsePSCLine(line string, nameCol, cmdCol int) (pscWorld, error) {
	rest := line
	var ids [2]int
	for i, what := range []string{"WID", "CID"} {
		rest = strings.TrimLeft(rest, " \t")
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		v, err := strconv.Atoi(rest[:end])
		if err != nil || v < 0 {
			return pscWorld{}, fmt.Errorf("%s %q is not a number", what, rest[:end])
		}
		ids[i] = v
		rest = rest[end:]
	}
	rest = strings.TrimLeft(rest, " \t")
	nameStart := len(line) - len(rest)
	w := pscWorld{wid: ids[0], cid: ids[1]}
	if rest == "" {
		return pscWorld{}, fmt.Errorf("no WorldName")
	}
	switch {
	case nameStart == nameCol && len(line) <= cmdCol:
		w.name = strings.TrimSpace(rest)
	case nameStart == nameCol && line[cmdCol-1] == ' ':
		w.name = strings.TrimSpace(line[nameCol:cmdCol])
		w.cmdline = strings.TrimSpace(line[cmdCol:])
	default:
		name, cmd, _ := strings.Cut(rest, " ")
		w.name, w.cmdline = name, strings.TrimSpace(cmd)
	}
	if w.name == "" {
		return pscWorld{}, fmt.Errorf("no WorldName")
	}
	return w, nil
}

// groupWorlds folds the worlds of each cartel into one Process, ordered by pid.
func groupWorlds(worlds []pscWorld) []Process {
	sort.SliceStable(worlds, func(i, j int) bool { return worlds[i].wid < worlds[j].wid })
	chosen := map[int]pscWorld{}
	var order []int
	for _, w := range worlds {
		pid := w.cid
		if pid == 0 { // kernel worlds have no cartel; each stands alone
			pid = w.wid
		}
		prev, seen := chosen[pid]
		if !seen {
			order = append(order, pid)
		}
		if !seen || (w.wid == pid && prev.wid != pid) {
			chosen[pid] = w
		}
	}
	sort.Ints(order)
	out := make([]Process, 0, len(order))
	for _, pid := range order {
		w := chosen[pid]
		out = append(out, Process{
			PID:     pid,
			Name:    w.name,
			Argv:    strings.Fields(w.cmdline),
			Cmdline: w.cmdline,
			Token:   pscToken(w.name, w.cmdline),
			// World and cartel ids grow as ESXi creates worlds, so the id orders by start.
			StartOrder: uint64(pid),
		})
	}
	return out
}

func pscToken(name, cmdline string) string {
	h := fnv.New64a()
	_, _ = io.WriteString(h, name)
	_, _ = h.Write([]byte{0})
	_, _ = io.WriteString(h, cmdline)
	return fmt.Sprintf("psc:%016x", h.Sum64())
}
