package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/snapferry/snapferry/pidmgr"
)

// freezeMarkURI is the namespace of the live domain metadata by which a backup marks a guest
// whose file systems it is freezing. libvirt keeps live metadata only while the domain runs,
// which is exactly as long as a freeze can last: a run killed between freeze and thaw leaves the
// mark, and the next backup of the domain (any repository, any --home) thaws the guest. The
// mark also tells an administrator reading `virsh dumpxml` who froze the guest. It names the
// process (pid and start token, as pidmgr tells them apart): a mark whose process still runs is
// a freeze under way (another run, from another --home), not a leftover.
const (
	freezeMarkURI = "https://github.com/snapferry/snapferry/xmlns/libvirt/freeze/1"
	freezeMarkKey = "snapferry"
)

// noThaw is what freezeGuest returns when nothing was frozen.
func noThaw() {}

// freezeGuest freezes the guest's file systems through the QEMU guest agent when --quiesce
// asked for it, so the backup job starts on a consistent disk. It returns the function that
// thaws them; call it as soon as the job has started (or failed to), and again (it does nothing
// the second time) on every way out. When the agent does not answer the backup goes on
// crash-consistent, with a warning: that is the documented behaviour of --quiesce on libvirt.
func (j *domBackup) freezeGuest(ctx context.Context) (thaw func()) {
	if !j.o.Quiesce {
		return noThaw
	}
	// Mark before freezing: whatever stops this process from here on, the mark outlives it.
	if err := j.d.markFrozen(j.dom, ownMark(ctx, j.o.JobID)); err != nil {
		j.warn("not quiesced, the backup is crash-consistent: cannot mark the domain before freezing it (%v)", err)
		return noThaw
	}
	n, err := j.d.l.DomainFsfreeze(j.dom, nil, 0)
	if err != nil {
		// The agent may still freeze after libvirt gave up waiting (libvirt's own snapshot code
		// thaws after a failed freeze for the same reason); a thaw of a thawed guest is harmless.
		// The mark goes only when nothing can be frozen: thawed, or no agent there at all.
		if _, terr := j.d.l.DomainFsthaw(j.dom, nil, 0); terr == nil || agentDown(terr) {
			_ = j.d.unmarkFrozen(j.dom)
		} else {
			j.warn("the guest file systems may be frozen: thaw after a failed freeze failed too (%v); run `virsh domfsthaw %s`", terr, j.vm.Name)
		}
		j.warn("not quiesced, the backup is crash-consistent: the QEMU guest agent did not freeze the file systems (%v); "+
			"run qemu-guest-agent in the guest and give the domain an org.qemu.guest_agent.0 channel (docs/libvirt.md)", err)
		return noThaw
	}
	j.o.logf("domain %s: froze %d guest file system(s) through the QEMU guest agent", j.vm.Name, n)
	frozen, done := time.Now(), false
	return func() {
		if done {
			return
		}
		done = true
		if _, err := j.d.l.DomainFsthaw(j.dom, nil, 0); err != nil {
			// The mark stays: the next backup of this domain tries again.
			j.warn("the guest file systems may still be frozen: thaw failed (%v); run `virsh domfsthaw %s`", err, j.vm.Name)
			return
		}
		if err := j.d.unmarkFrozen(j.dom); err != nil {
			j.o.logf("domain %s: %v", j.vm.Name, err)
		}
		j.o.logf("domain %s: thawed the guest file systems (frozen for %s)", j.vm.Name, time.Since(frozen).Round(time.Millisecond))
	}
}

// thawLeftover thaws a guest that an earlier run marked and froze and could not thaw (it was
// killed in between, or its thaw failed), and says so.
func (j *domBackup) thawLeftover(ctx context.Context) {
	m, ok := j.d.frozenMark(j.dom)
	if !ok {
		return
	}
	job := m.job
	if m.pid > 0 && m.pid != os.Getpid() {
		alive, err := markerAlive(ctx, m)
		if err != nil {
			// Not knowing is not "gone": thawing a freeze under way would make that run's backup
			// crash-consistent without a word.
			j.warn("the guest file systems are marked frozen by snapferry job %s (pid %d), and whether it still runs is unknown (%v): left as they are; if no snapferry runs, `virsh domfsthaw %s`", job, m.pid, err, j.vm.Name)
			return
		}
		if alive {
			j.o.logf("domain %s: snapferry job %s (pid %d) is freezing the guest right now; its thaw is its own", j.vm.Name, job, m.pid)
			return
		}
	}
	if _, err := j.d.l.DomainFsthaw(j.dom, nil, 0); err != nil {
		j.warn("snapferry job %s left the guest file systems frozen and they could not be thawed (%v); run `virsh domfsthaw %s`", job, err, j.vm.Name)
		return
	}
	_ = j.d.unmarkFrozen(j.dom)
	j.warn("thawed the guest file systems snapferry job %s left frozen (it stopped between freeze and thaw)", job)
}

// markerAlive reports whether the process that set m still runs. A mark without a token (its
// process could not read its own) is matched by pid alone: a live pid is taken as that run.
func markerAlive(ctx context.Context, m freezeMark) (bool, error) {
	table := pidmgr.NewProcessTable("", nil)
	if m.token != "" {
		return table.Alive(ctx, m.pid, m.token)
	}
	_, err := table.Lookup(ctx, m.pid)
	if errors.Is(err, pidmgr.ErrNoProcess) {
		return false, nil
	}
	return err == nil, err
}

// agentDown tells errors that mean no agent is there to talk to.
func agentDown(err error) bool {
	return isCode(err, golibvirt.ErrAgentUnresponsive) || isCode(err, golibvirt.ErrArgumentUnsupported) || isCode(err, golibvirt.ErrOperationInvalid)
}

// freezeMark is what the mark says: the job, and the process that set it (pid 0: unknown).
type freezeMark struct {
	job, token string
	pid        int
}

// ownMark is the mark of this process.
func ownMark(ctx context.Context, job string) freezeMark {
	m := freezeMark{job: job, pid: os.Getpid()}
	if p, err := pidmgr.NewProcessTable("", nil).Lookup(ctx, m.pid); err == nil {
		m.token = p.Token
	}
	return m
}

func (d *Driver) markFrozen(dom golibvirt.Domain, m freezeMark) error {
	x := el("frozen", []string{"job", m.job, "pid", strconv.Itoa(m.pid), "token", m.token}).String()
	err := d.l.DomainSetMetadata(dom, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{x},
		golibvirt.OptString{freezeMarkKey}, golibvirt.OptString{freezeMarkURI}, golibvirt.DomainAffectLive)
	if err != nil {
		return fmt.Errorf("set the freeze mark: %w", err)
	}
	return nil
}

func (d *Driver) unmarkFrozen(dom golibvirt.Domain) error {
	err := d.l.DomainSetMetadata(dom, int32(golibvirt.DomainMetadataElement), nil, nil,
		golibvirt.OptString{freezeMarkURI}, golibvirt.DomainAffectLive)
	if err != nil {
		return fmt.Errorf("remove the freeze mark: %w", err)
	}
	return nil
}

// frozenMark reads the mark (job "?" and pid 0 for what it does not say).
func (d *Driver) frozenMark(dom golibvirt.Domain) (freezeMark, bool) {
	x, err := d.l.DomainGetMetadata(dom, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{freezeMarkURI}, golibvirt.DomainAffectLive)
	if err != nil {
		return freezeMark{}, false
	}
	m := freezeMark{job: "?"}
	if n, err := parseXML(x); err == nil {
		if n.attr("job") != "" {
			m.job = n.attr("job")
		}
		m.token = n.attr("token")
		if pid, err := strconv.Atoi(n.attr("pid")); err == nil && pid > 0 {
			m.pid = pid
		}
	}
	return m, true
}
