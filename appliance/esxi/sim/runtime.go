package sim

import (
	"fmt"
	"sort"
	"time"
)

// completeDueTasks finishes the tasks whose time has come. A task that fails is dropped and
// journaled: on a real host it would end in error and the snapshot never appear.
func (s *session) completeDueTasks() error {
	now := s.h.now()
	var keep []task
	for _, t := range s.st.Tasks {
		if t.Due.After(now) {
			keep = append(keep, t)
			continue
		}
		var err error
		switch t.Op {
		case "createSnapshot":
			err = s.createSnapshot(t.VMID, t.Name, t.Description, t.Memory)
		case "removeSnapshot":
			// Only a marker for get.tasklist: the remove command does the work when its wait ends.
		case "shutdownGuest":
			if vs := s.st.VMs[t.VMID]; vs != nil {
				vs.Power = "off"
				err = s.event("power-off", "vm", t.VMID, "by", "guest shutdown")
			}
		}
		if err != nil {
			if jerr := s.event("task-failed", "vm", t.VMID, "op", t.Op, "error", err.Error()); jerr != nil {
				return jerr
			}
		}
	}
	s.st.Tasks = keep
	return nil
}

// addTask queues a task that completes after delay.
func (s *session) addTask(t task, delay time.Duration) {
	t.ID = s.st.NextTaskID
	s.st.NextTaskID++
	t.Due = s.h.now().Add(delay)
	s.st.Tasks = append(s.st.Tasks, t)
	sort.SliceStable(s.st.Tasks, func(i, j int) bool { return s.st.Tasks[i].ID < s.st.Tasks[j].ID })
}

// toolsRunning reports VMware Tools running in a VM's guest.
func (s *session) toolsRunning(id string) bool {
	vs := s.st.VMs[id]
	return vs != nil && vs.Power == "on" && vs.ToolsInstalled && !s.faults.ToolsNotRunning
}

// powerLabel is how fault messages name a power state.
func powerLabel(p string) string {
	switch p {
	case "on":
		return "Powered on"
	case "suspended":
		return "Suspended"
	}
	return "Powered off"
}

// setPower changes a VM's power state and journals it.
func (s *session) setPower(id, p string) error {
	s.st.VMs[id].Power = p
	return s.event("power-"+p, "vm", id)
}

// GuestWrite writes data at off into a powered-on VM's disk (a device like "scsi0:0" or vmdkN)
// the way its guest would: into the newest delta while snapshots exist, never into frozen files.
func (h *Host) GuestWrite(vmid, disk string, off int64, data []byte, seed uint64) error {
	return h.do(func(s *session) error { return s.guestWrite(vmid, disk, off, data, seed) })
}

func (s *session) guestWrite(vmid, disk string, off int64, data []byte, seed uint64) error {
	d, layers, err := s.diskChain(vmid, disk)
	if err != nil {
		return err
	}
	if s.st.VMs[vmid].Power != "on" {
		return fmt.Errorf("guest write to VM %s: the VM is %s", vmid, powerLabel(s.st.VMs[vmid].Power))
	}
	if err := writeThrough(layers, off, data); err != nil {
		return fmt.Errorf("VM %s disk %s: %w", vmid, d.Device, err)
	}
	return s.event("write", "vm", vmid, "disk", d.Device, "off", fmt.Sprint(off), "len", fmt.Sprint(len(data)), "seed", fmt.Sprint(seed))
}

// ExportDisk writes a VM disk as its guest sees it now (through the snapshot chain) into a new
// sparse file dst.
func (h *Host) ExportDisk(vmid, disk, dst string) error {
	return h.do(func(s *session) error {
		_, layers, err := s.diskChain(vmid, disk)
		if err != nil {
			return err
		}
		return exportChain(layers, dst)
	})
}

// PowerState returns a VM's power state ("on", "off", "suspended") after due tasks complete.
func (h *Host) PowerState(vmid string) (string, error) {
	var p string
	err := h.do(func(s *session) error {
		if _, err := s.vm(vmid); err != nil {
			return err
		}
		p = s.st.VMs[vmid].Power
		return nil
	})
	return p, err
}

// SetTools sets whether VMware Tools is installed (and so running while the VM is on).
func (h *Host) SetTools(vmid string, installed bool) error {
	return h.do(func(s *session) error {
		if _, err := s.vm(vmid); err != nil {
			return err
		}
		s.st.VMs[vmid].ToolsInstalled = installed
		return nil
	})
}

// Configure sets the host's version ("7.0.3", "8.0.2"...) and the syntax variants of older hosts.
func (h *Host) Configure(version, build string, removeByLevel, registerSilent bool) error {
	return h.do(func(s *session) error {
		if version != "" {
			s.st.Config.Version = version
		}
		if build != "" {
			s.st.Config.Build = build
		}
		s.st.Config.RemoveByLevel = removeByLevel
		s.st.Config.RegisterSilent = registerSilent
		return nil
	})
}
