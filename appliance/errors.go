package appliance

import "errors"

// Error classes that drivers wrap host faults in, so jobs decide without knowing the driver.
// Test with errors.Is.
var (
	ErrNotFound          = errors.New("not found on the host")
	ErrAlreadyExists     = errors.New("already exists on the host")
	ErrToolsNotRunning   = errors.New("VMware Tools is not running in the guest")
	ErrInvalidPowerState = errors.New("not possible in the VM's current power state")
	ErrNoSpace           = errors.New("no space left on the datastore")
	ErrTaskTimeout       = errors.New("host task did not finish in time")
	ErrLocked            = errors.New("VM is locked by another snapferry job")
)
