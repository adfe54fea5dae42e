package pidmgr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/shirou/gopsutil/v4/process"
)

// gopsutilTable reads process facts from /proc through gopsutil.
//
// The start token is "lx:" + the starttime field of /proc/PID/stat (clock ticks since boot) +
// "@" + the kernel's boot id (/proc/sys/kernel/random/boot_id). The ticks are read directly
// rather than through gopsutil's CreateTime: CreateTime adds a boot time that gopsutil derives
// from /proc/uptime inside containers, which drifts between calls and between processes, and a
// drifting token would make a live process look recycled. Ticks since boot never change for a
// process, and a new process with the same pid starts at a later tick, so ticks are exact
// within a boot; the boot id makes them exact across reboots too (a service started at boot
// may well get the same pid at the same tick every time).
type gopsutilTable struct{}

var _ ProcessTable = gopsutilTable{}

func (gopsutilTable) Processes(ctx context.Context) ([]Process, error) {
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list processes in /proc: %w", err)
	}
	out := make([]Process, 0, len(pids))
	boot := bootID()
	for _, pid := range pids {
		p, err := readLinuxProcessOfBoot(ctx, int(pid), boot)
		if err != nil {
			continue // exited while we read it, or a zombie: either way not running
		}
		out = append(out, p)
	}
	return out, nil
}

func (gopsutilTable) lookupReadsOne() {}

func (gopsutilTable) Lookup(ctx context.Context, pid int) (Process, error) {
	return readLinuxProcess(ctx, pid)
}

func (t gopsutilTable) Alive(ctx context.Context, pid int, token string) (bool, error) {
	return aliveFromLookup(ctx, t, pid, token)
}

// readLinuxProcess returns ErrNoProcess for a pid that does not exist or is a zombie. Facts the
// caller may not read (the exe link of another user's process) are left empty, not errors.
func readLinuxProcess(ctx context.Context, pid int) (Process, error) {
	return readLinuxProcessOfBoot(ctx, pid, bootID())
}

// bootIDPath holds a random id the kernel draws at every boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// bootID is the kernel's boot id as a token suffix ("@" + id), or "" where it cannot be read
// (the token then falls back to the ticks alone).
func bootID() string {
	b, err := os.ReadFile(bootIDPath)
	id := strings.TrimSpace(string(b))
	if err != nil || validToken("boot id", id) != nil || len(id) > 64 {
		return ""
	}
	return "@" + id
}

func readLinuxProcessOfBoot(ctx context.Context, pid int, boot string) (Process, error) {
	if pid <= 0 {
		return Process{}, ErrNoProcess
	}
	st, err := readProcStat(pid)
	if err != nil {
		return Process{}, err
	}
	if st.state == "Z" || st.state == "X" {
		return Process{}, ErrNoProcess
	}
	gp, err := process.NewProcessWithContext(ctx, int32(pid))
	if err != nil {
		return Process{}, ErrNoProcess
	}
	p := Process{PID: pid, PPID: st.ppid, Name: st.comm, Token: "lx:" + st.startTicks + boot, StartOrder: st.startOrder}
	if name, err := gp.NameWithContext(ctx); err == nil && name != "" {
		p.Name = name
	}
	if exe, err := gp.ExeWithContext(ctx); err == nil {
		p.Exe = cleanExe(exe)
	}
	if argv, err := gp.CmdlineSliceWithContext(ctx); err == nil {
		p.Argv = argv
		p.Cmdline = strings.Join(argv, " ")
	}
	// Re-read the token last: if the pid was recycled while we read the other files, the facts
	// may belong to two processes, and the caller must not act on such a mix.
	if again, err := readProcStat(pid); err != nil || again.startTicks != st.startTicks {
		return Process{}, ErrNoProcess
	}
	return p, nil
}

type procStat struct {
	comm       string
	state      string
	ppid       int
	startTicks string
	startOrder uint64 // startTicks as a number
}

// readProcStat parses /proc/PID/stat. The comm field is in parentheses and may itself contain
// spaces and parentheses, so the fixed fields are counted from the last ')'.
func readProcStat(pid int) (procStat, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return procStat{}, ErrNoProcess
	}
	if err != nil {
		return procStat{}, fmt.Errorf("read %s: %w", path, err)
	}
	s := string(data)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("parse %s: no (comm) field", path)
	}
	rest := strings.Fields(s[closing+1:])
	// rest[0] is field 3 (state); ppid is field 4, starttime field 22.
	if len(rest) < 20 {
		return procStat{}, fmt.Errorf("parse %s: %d fields after comm, want at least 20", path, len(rest))
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return procStat{}, fmt.Errorf("parse %s: ppid %q: %w", path, rest[1], err)
	}
	ticks, err := strconv.ParseUint(rest[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse %s: starttime %q: %w", path, rest[19], err)
	}
	return procStat{comm: s[open+1 : closing], state: rest[0], ppid: ppid, startTicks: rest[19], startOrder: ticks}, nil
}
