package esxi

import (
	"fmt"
	"strings"

	"github.com/snapferry/snapferry/appliance"
)

// ParsePowerState parses `vim-cmd vmsvc/power.getstate ID`: the state is the last non-empty line
// ("Retrieved runtime info" comes first on most hosts).
func ParsePowerState(out string) (appliance.PowerState, error) {
	if f := ParseFault(out); f != nil {
		return "", fmt.Errorf("parse power state: %w", f)
	}
	lines := splitLines(out)
	for i := len(lines) - 1; i >= 0; i-- {
		switch strings.TrimSpace(lines[i]) {
		case "":
			continue
		case "Powered on":
			return appliance.PoweredOn, nil
		case "Powered off":
			return appliance.PoweredOff, nil
		case "Suspended":
			return appliance.Suspended, nil
		default:
			return "", fmt.Errorf("parse power state: unknown state line %q", lines[i])
		}
	}
	return "", fmt.Errorf("parse power state: empty output")
}

// checkPowerOutput judges `power.on` / `power.off`: a fault block or a "Power on failed" /
// "Power off failed" line (6.x hosts, e.g. when the VM already is in that state) is a failure
// even when the exit status was 0.
func checkPowerOutput(op, out string, runErr error) error {
	if f := ParseFault(out); f != nil {
		return fmt.Errorf("%s: %w", op, f)
	}
	for _, l := range splitLines(out) {
		if t := strings.TrimSpace(l); strings.HasSuffix(t, " failed") {
			return fmt.Errorf("%s: host said %q: %w", op, t, appliance.ErrInvalidPowerState)
		}
	}
	return outputError(op, out, runErr)
}
