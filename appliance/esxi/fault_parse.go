package esxi

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/snapferry/snapferry/appliance"
)

// Fault is a vim.fault block that vim-cmd printed:
//
//	(vim.fault.ToolsUnavailable) {
//	   faultCause = (vmodl.MethodFault) null,
//	   faultMessage = <unset>
//	   msg = "Cannot complete operation because VMware Tools is not running in this virtual machine.",
//	}
//
// It unwraps to the appliance error class of its type, so callers test errors.Is(err,
// appliance.ErrToolsNotRunning) without knowing vim fault names.
type Fault struct {
	Type   string            // "vim.fault.ToolsUnavailable"
	Msg    string            // the msg field, outer quotes removed
	Fields map[string]string // every field, values with outer quotes removed
}

func (f *Fault) Error() string {
	if f.Msg == "" {
		return f.Type
	}
	return f.Type + ": " + f.Msg
}

// Unwrap maps the fault type to an appliance error class (nil for unknown types).
func (f *Fault) Unwrap() error {
	switch strings.TrimPrefix(f.Type, "vim.fault.") {
	case "NotFound":
		return appliance.ErrNotFound
	case "AlreadyExists", "DuplicateName":
		return appliance.ErrAlreadyExists
	case "ToolsUnavailable":
		return appliance.ErrToolsNotRunning
	case "InvalidPowerState":
		return appliance.ErrInvalidPowerState
	case "NoDiskSpace", "InsufficientDisk":
		return appliance.ErrNoSpace
	}
	return nil
}

var (
	faultStartRe = regexp.MustCompile(`^\(((?:vim|vmodl)\.[A-Za-z0-9_.]+)\) \{\s*$`)
	faultFieldRe = regexp.MustCompile(`^\s+([A-Za-z0-9_]+) = (.*)$`)
)

// ParseFault returns the first vim/vmodl fault block in out, or nil when there is none. An
// unterminated block (output cut short) still yields the fields read so far.
func ParseFault(out string) *Fault {
	var f *Fault
	for _, line := range splitLines(out) {
		if f == nil {
			if m := faultStartRe.FindStringSubmatch(line); m != nil {
				f = &Fault{Type: m[1], Fields: map[string]string{}}
			}
			continue
		}
		if strings.HasPrefix(line, "}") {
			break
		}
		if m := faultFieldRe.FindStringSubmatch(line); m != nil {
			v := strings.TrimRight(m[2], " \t")
			v = strings.TrimSuffix(v, ",")
			v = unquoteOuter(v)
			f.Fields[m[1]] = v
			if m[1] == "msg" {
				f.Msg = v
			}
		}
	}
	return f
}

// unquoteOuter strips one pair of surrounding double quotes. vim-cmd does not escape inner quotes
// (msg = "Unable to find a VM corresponding to "/vmfs/volumes/x/x.vmx""), so only the outer pair
// can be removed.
func unquoteOuter(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// splitLines splits command output into lines without their "\n" or "\r\n" endings.
func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// outputError turns a failed or faulted vim-cmd run into an error naming the operation: the
// fault when the output holds one, else the command's error with its output.
func outputError(op, out string, runErr error) error {
	if f := ParseFault(out); f != nil {
		return fmt.Errorf("%s: %w", op, f)
	}
	if runErr != nil {
		if t := strings.TrimSpace(out); t != "" {
			return fmt.Errorf("%s: %w: %s", op, runErr, oneLine(t))
		}
		return fmt.Errorf("%s: %w", op, runErr)
	}
	return nil
}

// oneLine shortens multi-line output for an error message.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
