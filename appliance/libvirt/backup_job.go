package libvirt

import (
	"fmt"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// jobGoneWait is how long ending a backup job waits for libvirt to drop it. DomainAbortJob can
// return while the job is still being torn down: a backup started right after (the next run of
// another chain, seconds later) then found the old job, took it for one a killed run left, and
// its own abort failed with "no job is active on the domain" (seen in CI).
const jobGoneWait = 30 * time.Second

// abortBackupJob ends the domain's backup job and waits until libvirt no longer lists it. A job
// that ended on its own between the look and the abort ("no job is active") is ended: that is
// what the caller wants.
func (d *Driver) abortBackupJob(dom golibvirt.Domain) error {
	if err := d.l.DomainAbortJob(dom); err != nil && !isCode(err, golibvirt.ErrOperationInvalid) {
		return err
	}
	deadline := time.Now().Add(jobGoneWait)
	for {
		if _, err := d.l.DomainBackupGetXMLDesc(dom, 0); err != nil {
			return nil // no backup job any more
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the backup job was asked to end but libvirt still lists it after %v; end it with virsh domjobabort", jobGoneWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
