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
	var src, dst, format, adapter string
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
			src = next()
		case "-d", "--diskformat":
			format = next()
		case "-a", "--adaptertype":
			adapter = next()
		default:
			if strings.HasPrefix(a, "-") || dst != "" {
				fmt.Fprintf(stderr, "esxisim: vmkfstools %s is not simulated (only -i SRC [-a ADAPTER] -d thin DST)\n", a)
				return 1
			}
			dst = a
		}
	}
	if src == "" || dst == "" {
		fmt.Fprintln(stderr, "esxisim: usage: vmkfstools -i SRC.vmdk -d thin DST.vmdk")
		return 1
	}
	if format != "" && format != "thin" {
		fmt.Fprintf(stderr, "esxisim: vmkfstools -d %s is not simulated (only thin)\n", format)
		return 1
	}
	var slow time.Duration
	var version string
	var failure string
	var layers []layer
	var dstLocal string
	err := h.do(func(s *session) error {
		version = s.st.Config.Version
		slow = s.faults.SlowTasks
		srcLocal, err := h.local(src)
		if err != nil {
			return err
		}
		if dstLocal, err = h.local(dst); err != nil {
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
		if layers, err = h.chain(srcLocal); err != nil {
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
		return s.event("clone", "src", src, "dst", dst)
	})
	if err != nil {
		fmt.Fprintln(stderr, "esxisim: vmkfstools:", err)
		return 1
	}
	if adapter != "" && !strings.HasPrefix(version, "5.") && !strings.HasPrefix(version, "6.0") && !strings.HasPrefix(version, "6.5") {
		fmt.Fprintln(stdout, "Option --adaptertype is deprecated and hence will be ignored")
	}
	fmt.Fprintln(stdout, "Destination disk format: VMFS thin-provisioned")
	fmt.Fprintf(stdout, "Cloning disk '%s'...\n", src)
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
