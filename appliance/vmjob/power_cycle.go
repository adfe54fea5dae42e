package vmjob

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/cron/clock"
)

// shutdownGuest shuts a running VM down through VMware Tools and waits until it is off. Without
// Tools, or when the guest does not stop within timeout, it powers off hard if forceOff allows,
// else it fails saying what to do.
func shutdownGuest(ctx context.Context, h appliance.Host, vm appliance.VM, timeout time.Duration, forceOff bool, poll time.Duration, clk clock.Clock) error {
	err := h.Shutdown(ctx, vm.ID)
	switch {
	case errors.Is(err, appliance.ErrToolsNotRunning):
		if !forceOff {
			return fmt.Errorf("shut down VM %s: VMware Tools is not running in the guest, so it cannot be shut down cleanly; start Tools, add --force-off to power it off hard, or use --mode=hot: %w", vm.Name, err)
		}
		return powerOffHard(ctx, h, vm)
	case err != nil:
		return fmt.Errorf("shut down VM %s: %w", vm.Name, err)
	}
	deadline := clk.Now().Add(timeout)
	for {
		st, err := h.PowerState(ctx, vm.ID)
		if err != nil {
			return fmt.Errorf("shut down VM %s: %w", vm.Name, err)
		}
		if st == appliance.PoweredOff {
			return nil
		}
		if clk.Now().After(deadline) {
			if !forceOff {
				return fmt.Errorf("shut down VM %s: the guest is still running after %s; add --force-off to power it off hard, or raise the timeout", vm.Name, timeout)
			}
			return powerOffHard(ctx, h, vm)
		}
		if err := clk.Sleep(ctx, poll); err != nil {
			return fmt.Errorf("shut down VM %s: %w", vm.Name, err)
		}
	}
}

func powerOffHard(ctx context.Context, h appliance.Host, vm appliance.VM) error {
	if err := h.PowerOff(ctx, vm.ID); err != nil && !errors.Is(err, appliance.ErrInvalidPowerState) {
		return fmt.Errorf("power off VM %s: %w", vm.Name, err)
	}
	return nil
}

// powerOnAgain powers a VM back on that the job shut down. It runs during cleanup, so it ignores
// the job's cancellation (a cancelled backup must not leave the VM off) but not forever. With
// settle > 0 a guest shutdown may still be under way: it waits up to settle for the VM to be off
// first, since powering on a VM that is still going down does nothing and it would stay off.
func powerOnAgain(ctx context.Context, h appliance.Host, vm appliance.VM, settle, poll time.Duration, clk clock.Clock) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settle+5*time.Minute)
	defer cancel()
	for deadline := clk.Now().Add(settle); settle > 0; {
		st, err := h.PowerState(ctx, vm.ID)
		if err != nil || st == appliance.PoweredOff || clk.Now().After(deadline) {
			break
		}
		if clk.Sleep(ctx, poll) != nil {
			break
		}
	}
	if err := h.PowerOn(ctx, vm.ID); err != nil && !errors.Is(err, appliance.ErrInvalidPowerState) {
		return fmt.Errorf("power VM %s on again: %w (it stays off: power it on by hand)", vm.Name, err)
	}
	if st, err := h.PowerState(ctx, vm.ID); err == nil && st != appliance.PoweredOn {
		return fmt.Errorf("power VM %s on again: it is %s (power it on by hand)", vm.Name, st)
	}
	return nil
}
