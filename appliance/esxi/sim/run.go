package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RootFromEnv returns the simulated host's root: SNAPFERRY_VMFS_ROOT, else ESXISIM_ROOT.
func RootFromEnv(getenv func(string) string) string {
	if r := getenv("SNAPFERRY_VMFS_ROOT"); r != "" {
		return r
	}
	return getenv("ESXISIM_ROOT")
}

// Run is the multi-call entry point: argv0's base name picks the personality (vim-cmd, vmkfstools,
// esxcli, vmware), or argv0 is esxisim and the first argument picks it. esxisim also has
// `init ROOT`, `demo ROOT` and `guest ...` (a simulated guest). It returns the exit status.
func Run(argv0 string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	name := filepath.Base(argv0)
	if strings.HasPrefix(name, "esxisim") {
		if len(args) == 0 {
			fmt.Fprint(stderr, runUsage)
			return 2
		}
		name, args = args[0], args[1:]
	}
	switch name {
	case "init", "demo":
		if len(args) != 1 {
			fmt.Fprintf(stderr, "esxisim: usage: esxisim %s ROOT\n", name)
			return 2
		}
		return setupCmd(name, args[0], stdout, stderr)
	case "vim-cmd", "vmkfstools", "esxcli", "vmware", "guest":
	default:
		fmt.Fprintf(stderr, "esxisim: unknown personality %q\n%s", name, runUsage)
		return 2
	}
	h, err := Open(RootFromEnv(getenv))
	if err != nil {
		fmt.Fprintln(stderr, "esxisim:", err)
		return 1
	}
	h.Getenv = getenv
	return h.Exec(name, args, stdout, stderr)
}

// Exec runs one personality (vim-cmd, vmkfstools, esxcli, vmware, guest) against this host.
func (h *Host) Exec(name string, args []string, stdout, stderr io.Writer) int {
	switch name {
	case "vim-cmd":
		return h.vimCmd(args, stdout, stderr)
	case "vmkfstools":
		return h.vmkfstools(args, stdout, stderr)
	case "esxcli":
		return h.esxcli(args, stdout, stderr)
	case "vmware":
		return h.vmware(args, stdout, stderr)
	case "guest":
		return h.guestCmd(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "esxisim: unknown personality %q\n%s", name, runUsage)
	return 2
}

const runUsage = `usage: esxisim PERSONALITY ARGS...   (or call it through a link named vim-cmd, vmkfstools, esxcli, vmware)
  esxisim init ROOT                       make an empty simulated host (datastores via the Go API)
  esxisim demo ROOT                       make a host with two datastores and a running VM
  esxisim guest write VMID DISK OFF LEN --pattern SEED
  esxisim guest run VMID DISK --count N --len L --seed S [--interval D]
  esxisim guest export VMID DISK DST      the disk as the guest sees it, into a sparse file
The host root comes from SNAPFERRY_VMFS_ROOT or ESXISIM_ROOT; faults from ROOT/.esxisim/faults and ESXISIM_FAULTS.
`

func setupCmd(name, root string, stdout, stderr io.Writer) int {
	h, err := NewHost(root)
	if err == nil && name == "demo" {
		var id string
		id, err = BuildDemo(h)
		if err == nil {
			fmt.Fprintf(stdout, "demo host at %s: VM %s \"web [demo] 01\" powered on\n", h.Root, id)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "esxisim:", err)
		return 1
	}
	return 0
}

// BuildDemo fills a host with datastores "datastore1" (VMFS-6) and "ssd store" (VMFS-5) and a
// powered-on VM "web [demo] 01" with Tools, a 64 MiB disk and a 32 MiB disk on the other
// datastore, partly written. It returns the VM id.
func BuildDemo(h *Host) (string, error) {
	for _, d := range []struct{ name, typ string }{{"datastore1", "VMFS-6"}, {"ssd store", "VMFS-5"}} {
		if err := h.AddDatastore(d.name, DatastoreOptions{Type: d.typ, Capacity: 64 << 30}); err != nil {
			return "", err
		}
	}
	return h.AddVM(VMSpec{
		Name: "web [demo] 01", Datastore: "datastore1", PoweredOn: true, Tools: true, Annotation: "Demo VM.\nOwner: ops",
		Disks: []DiskSpec{
			{Size: 64 << 20, Data: []Extent{{0, 4 << 20, 1}, {20 << 20, 3 << 20, 2}}},
			{Size: 32 << 20, Datastore: "ssd store", Data: []Extent{{1 << 20, 2 << 20, 3}}},
		},
	})
}

func (h *Host) guestCmd(args []string, stdout, stderr io.Writer) int {
	fail := func(err error) int { fmt.Fprintln(stderr, "esxisim: guest:", err); return 1 }
	if len(args) < 3 {
		fmt.Fprint(stderr, runUsage)
		return 2
	}
	op, vmid, disk := args[0], args[1], args[2]
	flags, pos := splitFlags(args[3:])
	switch op {
	case "write":
		if len(pos) != 2 {
			fmt.Fprint(stderr, runUsage)
			return 2
		}
		off, err1 := strconv.ParseInt(pos[0], 10, 64)
		n, err2 := strconv.ParseInt(pos[1], 10, 64)
		seed, err3 := strconv.ParseUint(flags["pattern"], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || n < 0 || n > 64<<20 {
			return fail(fmt.Errorf("write wants OFF LEN (LEN up to 64 MiB) and --pattern SEED as numbers"))
		}
		buf := make([]byte, n)
		Pattern(seed, off, buf)
		if err := h.GuestWrite(vmid, disk, off, buf, seed); err != nil {
			return fail(err)
		}
		return 0
	case "run":
		count, err1 := strconv.Atoi(flags["count"])
		n, err2 := strconv.ParseInt(flags["len"], 10, 64)
		seed, err3 := strconv.ParseUint(flags["seed"], 10, 64)
		var interval time.Duration
		var err4 error
		if v := flags["interval"]; v != "" {
			interval, err4 = time.ParseDuration(v)
		}
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || n <= 0 || n > 64<<20 {
			return fail(fmt.Errorf("run wants --count N --len L --seed S [--interval D]"))
		}
		if err := h.GuestRun(vmid, disk, count, n, seed, interval); err != nil {
			return fail(err)
		}
		return 0
	case "export":
		if len(pos) != 1 {
			fmt.Fprint(stderr, runUsage)
			return 2
		}
		if err := h.ExportDisk(vmid, disk, pos[0]); err != nil {
			return fail(err)
		}
		return 0
	}
	fmt.Fprint(stderr, runUsage)
	return 2
}

// GuestRun makes count writes of n bytes at pseudo-random offsets (seeded, so reproducible), each
// journaled with its own seed, interval apart. It stops at the first failure (e.g. the VM went off).
func (h *Host) GuestRun(vmid, disk string, count int, n int64, seed uint64, interval time.Duration) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var size int64
	if err := h.do(func(s *session) error {
		_, layers, err := s.diskChain(vmid, disk)
		if err != nil {
			return err
		}
		size = layers[0].d.Size()
		return nil
	}); err != nil {
		return err
	}
	if n > size {
		return fmt.Errorf("guest run: writes of %d bytes do not fit the %d-byte disk", n, size)
	}
	buf := make([]byte, n)
	for i := 0; i < count; i++ {
		off := rng.Int64N(size - n + 1)
		ws := seed*1000003 + uint64(i)
		Pattern(ws, off, buf)
		if err := h.GuestWrite(vmid, disk, off, buf, ws); err != nil {
			return fmt.Errorf("guest run write %d: %w", i, err)
		}
		if interval > 0 {
			time.Sleep(interval)
		}
	}
	return nil
}

// splitFlags separates --name value / --name=value flags from positional arguments.
func splitFlags(args []string) (map[string]string, []string) {
	flags := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			pos = append(pos, a)
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok && i+1 < len(args) {
			i++
			v = args[i]
		}
		flags[k] = v
	}
	return flags, pos
}
