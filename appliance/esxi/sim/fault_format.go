package sim

import (
	"fmt"
	"io"
)

// simFault is a vim fault the simulated vim-cmd prints as a block (and exits non-zero).
type simFault struct {
	typ    string      // "vim.fault.NotFound"
	fields [][2]string // extra fields before msg, values already quoted as printed
	msg    string
}

func (f *simFault) Error() string { return f.typ + ": " + f.msg }

// write prints the block the way the reference shows it: every field but the last before msg ends
// in ", " (comma, blank), the last in nothing, msg in ",".
func (f *simFault) write(w io.Writer) {
	fields := append([][2]string{{"faultCause", "(vmodl.MethodFault) null"}, {"faultMessage", "<unset>"}}, f.fields...)
	fmt.Fprintf(w, "(%s) {\n", f.typ)
	for i, kv := range fields {
		sep := ", "
		if i == len(fields)-1 {
			sep = ""
		}
		fmt.Fprintf(w, "   %s = %s%s\n", kv[0], kv[1], sep)
	}
	fmt.Fprintf(w, "   msg = \"%s\",\n}\n", f.msg)
}

func toolsUnavailable() *simFault {
	return &simFault{typ: "vim.fault.ToolsUnavailable", msg: "Cannot complete operation because VMware Tools is not running in this virtual machine."}
}

func invalidPowerState(requested, existing, label string) *simFault {
	return &simFault{
		typ:    "vim.fault.InvalidPowerState",
		fields: [][2]string{{"requestedState", `"` + requested + `"`}, {"existingState", `"` + existing + `"`}},
		msg:    fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", label),
	}
}
