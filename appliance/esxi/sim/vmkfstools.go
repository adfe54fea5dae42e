package sim

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// vmkfstools answers `vmkfstools -i SRC [-a ADAPTER] -d thin DST`: it clones the disk SRC
// describes, its snapshot chain consolidated, into a new thin (sparse) disk. Progress is one line
// rewritten with "\r", as on a host.
func (h *Host) vmkfstools(args []string, stdout, stderr io.Writer) int {
	c, problem := parseVmkfstools(args)
	if problem != "" {
		fmt.Fprintln(stderr, problem)
		return 1
	}
	version, slow, failure, err := h.cloneDisk(c)
	if err != nil {
		fmt.Fprintln(stderr, "esxisim: vmkfstools:", err)
		return 1
	}
	if c.adapter != "" && !strings.HasPrefix(version, "5.") && !strings.HasPrefix(version, "6.0") && !strings.HasPrefix(version, "6.5") {
		fmt.Fprintln(stdout, "Option --adaptertype is deprecated and hence will be ignored")
	}
	fmt.Fprintln(stdout, "Destination disk format: VMFS thin-provisioned")
	fmt.Fprintf(stdout, "Cloning disk '%s'...\n", c.src)
	if failure != "" {
		fmt.Fprintln(stdout, failure)
		return 1
	}
	for p := 0; p <= 100; p++ {
		fmt.Fprintf(stdout, "\rClone: %d%% done.", p)
		if slow > 0 {
			time.Sleep(slow / 100)
		}
	}
	fmt.Fprintln(stdout)
	return 0
}

// vmkClone is a parsed `vmkfstools -i` command line.
type vmkClone struct {
	src, dst, format, adapter string
}

// parseVmkfstools reads the simulated subset of vmkfstools' arguments; problem is the line to
// print when they are outside it.
func parseVmkfstools(args []string) (c vmkClone, problem string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch a {
		case "-i", "--clonevirtualdisk":
			c.src = next()
		case "-d", "--diskformat":
			c.format = next()
		case "-a", "--adaptertype":
			c.adapter = next()
		default:
			if strings.HasPrefix(a, "-") || c.dst != "" {
				return c, fmt.Sprintf("esxisim: vmkfstools %s is not simulated (only -i SRC [-a ADAPTER] -d thin DST)", a)
			}
			c.dst = a
		}
	}
	if c.src == "" || c.dst == "" {
		return c, "esxisim: usage: vmkfstools -i SRC.vmdk -d thin DST.vmdk"
	}
	if c.format != "" && c.format != "thin" {
		return c, fmt.Sprintf("esxisim: vmkfstools -d %s is not simulated (only thin)", c.format)
	}
	return c, ""
}

// cloneDisk clones c.src to c.dst in the simulated host's state. failure is the host's message
// for a clone it refuses (missing source, existing target, no space); err is for the simulator
// itself failing. version and slow are the host's, for the output.
func (h *Host) cloneDisk(c vmkClone) (version string, slow time.Duration, failure string, err error) {
	err = h.do(func(s *session) error {
		version = s.st.Config.Version
		slow = s.faults.SlowTasks
		srcLocal, err := h.local(c.src)
		if err != nil {
			return err
		}
		dstLocal, err := h.local(c.dst)
		if err != nil {
			return err
		}
		switch {
		case !exists(srcLocal):
			failure = "Failed to clone disk : The system cannot find the file specified (25)."
			return nil
		case exists(dstLocal):
			failure = "Failed to clone disk : The file already exists (39)."
			return nil
		case !exists(filepath.Dir(dstLocal)):
			failure = "Failed to clone disk : The system cannot find the file specified (25)."
			return nil
		}
		ds, err := s.datastoreOf(dstLocal)
		if err != nil {
			return err
		}
		layers, err := h.chain(srcLocal)
		if err != nil {
			return err
		}
		free, err := s.free(ds)
		if err != nil {
			return err
		}
		if free < allocatedBytes(layers) {
			failure = "Failed to clone disk : No space left on device (1835017)."
			return nil
		}
		if err := h.cloneChain(layers, dstLocal); err != nil {
			return err
		}
		return s.event("clone", "src", c.src, "dst", c.dst)
	})
	return version, slow, failure, err
}

// allocatedBytes estimates what a clone of the chain allocates: the data of every layer.
func allocatedBytes(layers []layer) int64 {
	var n int64
	for _, l := range layers {
		if f, err := os.Open(l.data); err == nil {
			_ = dataExtents(f, l.d.Size(), func(_, k int64) error { n += k; return nil })
			f.Close()
		}
	}
	return n
}

// cloneChain writes a new thin base disk at dst (descriptor) with its -flat extent.
func (h *Host) cloneChain(layers []layer, dst string) error {
	stem := strings.TrimSuffix(filepath.Base(dst), ".vmdk")
	flat := stem + "-flat.vmdk"
	if err := exportChain(layers, filepath.Join(filepath.Dir(dst), flat)); err != nil {
		return err
	}
	cid := randomHex(4)
	return os.WriteFile(dst, []byte(baseDescriptor(cid, layers[0].d.Size()/512, flat, randomHex(12)+cid, diskUUID())), 0o644)
}
