package esxi

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/snapferry/snapferry/appliance"
)

// ParseFilesystemList parses `esxcli storage filesystem list`. Column widths follow the data and a
// long value pushes the rest of its row right, so rows are cut from both ends: the mount point is
// the first field, UUID, Mounted, Type, Size and Free the last five, and the volume name (empty, or
// with spaces) is whatever lies between.
func ParseFilesystemList(out string) ([]appliance.Datastore, error) {
	lines := splitLines(out)
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "Mount Point") || !strings.HasPrefix(lines[1], "---") {
		return nil, fmt.Errorf("parse filesystem list: want a \"Mount Point\" header and a dashes line, got %q", oneLine(out))
	}
	var dss []appliance.Datastore
	for n, line := range lines[2:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		spans := fieldSpans(line)
		if len(spans) < 6 {
			return nil, fmt.Errorf("parse filesystem list: line %d %q has %d fields, want at least 6", n+3, line, len(spans))
		}
		k := len(spans)
		field := func(i int) string { return line[spans[i][0]:spans[i][1]] }
		size, err1 := strconv.ParseInt(field(k-2), 10, 64)
		free, err2 := strconv.ParseInt(field(k-1), 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("parse filesystem list: line %d %q: size/free are not numbers", n+3, line)
		}
		mounted := field(k - 4)
		if mounted != "true" && mounted != "false" {
			return nil, fmt.Errorf("parse filesystem list: line %d %q: Mounted is %q, want true or false", n+3, line, mounted)
		}
		dss = append(dss, appliance.Datastore{
			MountPath: field(0),
			Name:      strings.TrimSpace(line[spans[0][1]:spans[k-5][0]]),
			UUID:      field(k - 5),
			Mounted:   mounted == "true",
			Type:      field(k - 3),
			Size:      size,
			Free:      free,
		})
	}
	return dss, nil
}

// fieldSpans returns the [start, end) byte offsets of the blank-separated fields of line.
func fieldSpans(line string) [][2]int {
	var spans [][2]int
	start := -1
	for i := 0; i <= len(line); i++ {
		blank := i == len(line) || line[i] == ' ' || line[i] == '\t'
		switch {
		case !blank && start < 0:
			start = i
		case blank && start >= 0:
			spans = append(spans, [2]int{start, i})
			start = -1
		}
	}
	return spans
}

// Version is what `vmware -v` prints: "VMware ESXi 6.5.0 build-10719125".
type Version struct {
	Product string // "VMware ESXi"
	Version string // "6.5.0"
	Build   string // "10719125"
}

// ParseVersion parses `vmware -v`.
func ParseVersion(out string) (Version, error) {
	t := strings.TrimSpace(out)
	f := strings.Fields(t)
	if len(f) < 4 || !strings.HasPrefix(f[len(f)-1], "build-") {
		return Version{}, fmt.Errorf("parse vmware -v: %q is not \"VMware ESXi X.Y.Z build-N\"", oneLine(t))
	}
	return Version{
		Product: strings.Join(f[:len(f)-2], " "),
		Version: f[len(f)-2],
		Build:   strings.TrimPrefix(f[len(f)-1], "build-"),
	}, nil
}
