package esxi

import (
	"errors"
	"testing"

	"github.com/snapferry/snapferry/appliance"
)

func TestParsePowerStateReference(t *testing.T) {
	s := samples(t, "power.txt", false)
	want := []appliance.PowerState{appliance.PoweredOn, appliance.PoweredOff, appliance.Suspended}
	for i, w := range want {
		got, err := ParsePowerState(s[i].Body)
		if err != nil || got != w {
			t.Errorf("sample %d %q: got %q, %v; want %q", i, s[i].Body, got, err, w)
		}
	}
	for _, bad := range []string{"", "Retrieved runtime info\n", "Retrieved runtime info\nPowered sideways\n"} {
		if _, err := ParsePowerState(bad); err == nil {
			t.Errorf("ParsePowerState(%q): want an error", bad)
		}
	}
}

func TestCheckPowerOutputReference(t *testing.T) {
	cases := []struct {
		title string
		class error // nil: success
	}{
		{"power.on ID (success)", nil},
		{"power.on when already on, older hosts", appliance.ErrInvalidPowerState},
		{"power.on when already on, ESXi 6.0/6.5", appliance.ErrInvalidPowerState},
		{"power.off ID (success", nil},
		{"Tools is not running", appliance.ErrToolsNotRunning},
	}
	for _, c := range cases {
		err := checkPowerOutput("power op", sample(t, "power.txt", c.title, false), nil)
		if c.class == nil && err != nil || c.class != nil && !errors.Is(err, c.class) {
			t.Errorf("%s: got %v, want class %v", c.title, err, c.class)
		}
	}
	f := ParseFault(sample(t, "power.txt", "older hosts", false))
	if f == nil || f.Type != "vim.fault.InvalidPowerState" || f.Fields["existingState"] != "poweredOn" ||
		f.Msg != "The attempted operation cannot be performed in the current state (Powered on)." {
		t.Errorf("InvalidPowerState fault parsed as %+v", f)
	}
}

func FuzzParsePowerState(f *testing.F) {
	addSeeds(f, false, "power.txt")
	f.Fuzz(func(t *testing.T, out string) {
		st, err := ParsePowerState(out)
		if err == nil && st != appliance.PoweredOn && st != appliance.PoweredOff && st != appliance.Suspended {
			t.Fatalf("state %q without error", st)
		}
		_ = checkPowerOutput("fuzz", out, nil)
	})
}
