package sim

import (
	"fmt"
	"io"
	"strings"
)

// esxcli answers `esxcli storage filesystem list` with the column widths of the reference sample;
// a longer value pushes the rest of its row right, as the sample's own rows show.
func (h *Host) esxcli(args []string, stdout, stderr io.Writer) int {
	if len(args) >= 2 && (args[0] == "software" || args[0] == "system" && args[1] == "settings") {
		return h.esxcliSoftware(args, stdout, stderr) // software.go
	}
	if strings.Join(args, " ") != "storage filesystem list" {
		fmt.Fprintf(stderr, "esxisim: esxcli %s is not simulated (only storage filesystem list, software vib/acceptance, system settings encryption get)\n", strings.Join(args, " "))
		return 1
	}
	var out strings.Builder
	err := h.do(func(s *session) error {
		const row = "%-49s  %-14s  %-35s  %7s  %-6s  %12s  %12s\n"
		fmt.Fprintf(&out, row, "Mount Point", "Volume Name", "UUID", "Mounted", "Type", "Size", "Free")
		d := func(n int) string { return strings.Repeat("-", n) }
		fmt.Fprintf(&out, "%s  %s  %s  %s  %s  %s  %s\n", d(49), d(14), d(35), d(7), d(6), d(12), d(12))
		for i := range s.st.Datastores {
			ds := &s.st.Datastores[i]
			free, err := s.free(ds)
			if err != nil {
				return err
			}
			fmt.Fprintf(&out, row, VMFSPrefix+ds.UUID, ds.Name, ds.UUID, "true", ds.Type, fmt.Sprint(ds.Capacity), fmt.Sprint(free))
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "esxisim: esxcli:", err)
		return 1
	}
	fmt.Fprint(stdout, out.String())
	return 0
}

// vmware answers `vmware -v` and `vmware -l`.
func (h *Host) vmware(args []string, stdout, stderr io.Writer) int {
	st, err := h.loadState()
	if err != nil {
		fmt.Fprintln(stderr, "esxisim: vmware:", err)
		return 1
	}
	switch strings.Join(args, " ") {
	case "-v":
		fmt.Fprintf(stdout, "VMware ESXi %s build-%s\n", st.Config.Version, st.Config.Build)
	case "-l":
		fmt.Fprintf(stdout, "VMware ESXi %s %s\n", st.Config.Version, st.Config.Update)
	default:
		fmt.Fprintln(stderr, "esxisim: usage: vmware -v | -l")
		return 1
	}
	return 0
}
