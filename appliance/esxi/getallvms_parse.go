package esxi

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/snapferry/snapferry/appliance"
)

// vmRowRe matches one inventory row. Rows are aligned with each other but not with the header, so
// the row is cut by shape: the id, then the name (any text, spaces and brackets included) up to a
// run of 3+ blanks before "[datastore] ...vmx" (or .vmtx for a template), then the guest OS, the vmx-NN version and the
// annotation (which may be empty and leave trailing blanks).
var vmRowRe = regexp.MustCompile(`^(\d+)\s+(.*?)\s{3,}(\[[^\]]+\] .*?\.vmt?x)\s+(\S+)\s+(vmx-\d+)(?:\s+(.*?))?\s*$`)

// ParseGetAllVMs parses `vim-cmd vmsvc/getallvms`. A line that is not a row continues the previous
// row's annotation (multi-line annotations). "Skipping invalid VM" lines, which hosts print for
// broken registrations, are returned as warnings. Only the header means no VMs.
func ParseGetAllVMs(out string) (vms []appliance.VM, warnings []string, err error) {
	lines := splitLines(out)
	i := 0
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	if i == len(lines) {
		return nil, nil, fmt.Errorf("parse getallvms: empty output (want at least the Vmid header)")
	}
	if f := strings.Fields(lines[i]); len(f) < 2 || f[0] != "Vmid" || f[1] != "Name" {
		return nil, nil, fmt.Errorf("parse getallvms: first line %q is not the Vmid/Name header", lines[i])
	}
	for n, line := range lines[i+1:] {
		if strings.HasPrefix(line, "Skipping invalid VM") {
			warnings = append(warnings, strings.TrimSpace(line))
			continue
		}
		m := vmRowRe.FindStringSubmatch(line)
		if m == nil {
			if len(vms) == 0 {
				if strings.TrimSpace(line) == "" {
					continue
				}
				return nil, nil, fmt.Errorf("parse getallvms: line %d %q is neither a VM row nor an annotation", i+2+n, line)
			}
			last := &vms[len(vms)-1]
			last.Annotation += "\n" + strings.TrimRight(line, " \t")
			continue
		}
		ds, _, err := ParseDatastorePath(m[3])
		if err != nil {
			return nil, nil, fmt.Errorf("parse getallvms: line %d: %w", i+2+n, err)
		}
		vms = append(vms, appliance.VM{
			ID: m[1], Name: m[2], VMXPath: m[3], Datastore: ds,
			GuestOS: m[4], Version: m[5], Annotation: m[6],
		})
	}
	// A multi-line annotation's trailing blank lines are the output's, not the annotation's.
	for k := range vms {
		vms[k].Annotation = strings.TrimRight(vms[k].Annotation, "\n")
	}
	return vms, warnings, nil
}
