package sim

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance/esxi"
)

// vimCmd answers as vim-cmd. Faults print as blocks on stdout (where vim-cmd prints them) and
// exit 1; usage errors go to stderr.
func (h *Host) vimCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Commands available under /:\nhbrsvc/       internalsvc/  solo/         vmsvc/\nhelp          proxysvc/     vimsvc/")
		return 1
	}
	if args[0] == "help" {
		if len(args) > 1 && args[1] == "vmsvc/snapshot.remove" {
			var usage string
			err := h.do(func(s *session) error { usage = removeUsage(s.st.Config.RemoveByLevel); return nil })
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintln(stderr, "esxisim: help is simulated for vmsvc/snapshot.remove only")
		return 1
	}
	cmd, rest := args[0], args[1:]
	if err := h.slowRemoval(cmd, rest); err != nil {
		fmt.Fprintln(stderr, "esxisim:", err)
		return 1
	}
	var out strings.Builder
	err := h.do(func(s *session) error { return s.vimCmd(cmd, rest, &out) })
	fmt.Fprint(stdout, out.String())
	if err != nil {
		if f, ok := err.(*simFault); ok {
			f.write(stdout)
		} else if _, ok := err.(plainFailure); ok {
			// already said on stdout ("Power on failed")
		} else if u, ok := err.(usageError); ok {
			fmt.Fprint(stderr, string(u))
		} else {
			fmt.Fprintln(stderr, "esxisim:", err)
		}
		return 1
	}
	return 0
}

// slowRemoval makes snapshot.remove/removeall take the slow-tasks time, as consolidation does on a
// busy host: the removal shows in get.tasklist while the command waits (outside the host lock, so
// the guest and other commands go on), then the command removes and ends.
func (h *Host) slowRemoval(cmd string, args []string) error {
	if (cmd != "vmsvc/snapshot.remove" && cmd != "vmsvc/snapshot.removeall") || len(args) == 0 {
		return nil
	}
	var delay time.Duration
	err := h.do(func(s *session) error {
		delay = s.faults.SlowTasks
		if _, err := s.vm(args[0]); err != nil || delay <= 0 {
			return nil // the command itself reports an unknown VM
		}
		s.addTask(task{VMID: args[0], Op: "removeSnapshot"}, delay)
		return nil
	})
	if err != nil || delay <= 0 {
		return err
	}
	time.Sleep(delay)
	return nil
}

// usageError is printed as it is, to stderr.
type usageError string

func (u usageError) Error() string { return string(u) }

// plainFailure is a failure vim-cmd reports with a plain line ("Power on failed").
type plainFailure struct{}

func (plainFailure) Error() string { return "" }

func removeUsage(byLevel bool) string {
	if byLevel {
		return "Usage: snapshot.remove vmid [removeChildren] [snapshotLevel] [snapshotIndex]\n\nRemove a snapshot associated with a virtual machine.\n"
	}
	return "Usage: snapshot.remove vmid snapshotId [removeChildren]\n\nRemove a snapshot associated with a virtual machine.\n"
}

func (s *session) vimCmd(cmd string, args []string, out *strings.Builder) error {
	need := func(n int, usage string) error {
		if len(args) < n {
			return usageError("Insufficient arguments.\nUsage: " + usage + "\n")
		}
		return nil
	}
	switch cmd {
	case "vmsvc/getallvms":
		return s.getAllVMs(out)
	case "vmsvc/power.getstate":
		if err := need(1, "power.getstate vmid"); err != nil {
			return err
		}
		return s.powerGetState(args[0], out)
	case "vmsvc/power.on", "vmsvc/power.off":
		if err := need(1, strings.TrimPrefix(cmd, "vmsvc/")+" vmid"); err != nil {
			return err
		}
		return s.powerOnOff(args[0], cmd == "vmsvc/power.on", out)
	case "vmsvc/power.shutdown":
		if err := need(1, "power.shutdown vmid"); err != nil {
			return err
		}
		return s.shutdown(args[0])
	case "vmsvc/snapshot.create":
		if err := need(1, "snapshot.create vmid [snapshotName] [snapshotDescription] [includeMemory] [quiesced]"); err != nil {
			return err
		}
		return s.snapshotCreateCmd(args, out)
	case "vmsvc/snapshot.get":
		if err := need(1, "snapshot.get vmid"); err != nil {
			return err
		}
		return s.snapshotGet(args[0], out)
	case "vmsvc/snapshot.remove":
		return s.snapshotRemoveCmd(args, out)
	case "vmsvc/snapshot.removeall":
		if err := need(1, "snapshot.removeall vmid"); err != nil {
			return err
		}
		return s.snapshotRemoveAll(args[0], out)
	case "solo/registervm":
		if err := need(1, "solo/registervm vmxPath [vmName] [poolName] [hostName]"); err != nil {
			return err
		}
		return s.registerCmd(args[0], out)
	case "vmsvc/unregister":
		if err := need(1, "unregister vmid"); err != nil {
			return err
		}
		return s.unregister(args[0])
	case "vmsvc/get.tasklist":
		if err := need(1, "get.tasklist vmid"); err != nil {
			return err
		}
		return s.taskList(args[0], out)
	}
	return usageError(fmt.Sprintf("Unknown command: '%s'\n", cmd))
}

// powerGetState answers vmsvc/power.getstate.
func (s *session) powerGetState(vmid string, out *strings.Builder) error {
	if _, err := s.vm(vmid); err != nil {
		return err
	}
	out.WriteString("Retrieved runtime info\n" + powerLabel(s.st.VMs[vmid].Power) + "\n")
	return nil
}

// unregister answers vmsvc/unregister: the VM leaves the inventory, its files stay.
func (s *session) unregister(vmid string) error {
	if _, err := s.vm(vmid); err != nil {
		return err
	}
	for i, e := range s.inv.Entries {
		if e.ObjID == vmid {
			s.inv.Entries = append(s.inv.Entries[:i], s.inv.Entries[i+1:]...)
			break
		}
	}
	delete(s.st.VMs, vmid)
	return s.event("unregister", "vm", vmid)
}

// taskList answers vmsvc/get.tasklist: the VM's running tasks as managed object references.
func (s *session) taskList(vmid string, out *strings.Builder) error {
	if _, err := s.vm(vmid); err != nil {
		return err
	}
	var ids []string
	for _, t := range s.st.Tasks {
		if t.VMID == vmid {
			ids = append(ids, fmt.Sprintf("'vim.Task:haTask-%s-vim.VirtualMachine.%s-%d'", t.VMID, t.Op, t.ID))
		}
	}
	if len(ids) == 0 {
		out.WriteString("(ManagedObjectReference) []\n")
		return nil
	}
	out.WriteString("(ManagedObjectReference) [\n  " + strings.Join(ids, ",\n  ") + "\n]\n")
	return nil
}

// getallvms headers: 6.x hosts pad the header; newer ones print it with plain 3-blank gaps.
const (
	getAllVMsHeader6 = "Vmid      Name                           File                           Guest OS       Version   Annotation\n"
	getAllVMsHeader8 = "Vmid   Name   File   Guest OS   Version   Annotation\n"
)

// getAllVMs prints the inventory: rows aligned with each other (each column as wide as its
// widest value plus 3 blanks, the id at least 4) but not with the header.
func (s *session) getAllVMs(out *strings.Builder) error {
	if strings.HasPrefix(s.st.Config.Version, "6.") || strings.HasPrefix(s.st.Config.Version, "5.") {
		out.WriteString(getAllVMsHeader6)
	} else {
		out.WriteString(getAllVMsHeader8)
	}
	entries := append([]inventoryEntry(nil), s.inv.Entries...)
	sort.Slice(entries, func(i, j int) bool { return atoi(entries[i].ObjID) < atoi(entries[j].ObjID) })
	var rows [][6]string
	var skipped []string
	for _, e := range entries {
		v, err := s.vm(e.ObjID)
		if err != nil {
			skipped = append(skipped, e.ObjID)
			continue
		}
		ds, err := s.datastoreOf(v.vmx)
		if err != nil {
			skipped = append(skipped, e.ObjID)
			continue
		}
		_, rel, _ := strings.Cut(strings.TrimPrefix(e.VMXCfgPath, VMFSPrefix), "/")
		hw, _ := strconv.Atoi(v.conf.Value("virtualHW.version"))
		rows = append(rows, [6]string{e.ObjID, v.conf.Value("displayName"), "[" + ds.Name + "] " + rel,
			v.conf.Value("guestOS"), fmt.Sprintf("vmx-%02d", hw), v.conf.Value("annotation")})
	}
	for _, id := range skipped {
		fmt.Fprintf(out, "Skipping invalid VM '%s'\n", id)
	}
	var w [5]int
	w[0] = 4
	for _, r := range rows {
		for c := 0; c < 5; c++ {
			w[c] = max(w[c], len(r[c]))
		}
	}
	for _, r := range rows {
		for c := 0; c < 4; c++ {
			out.WriteString(r[c] + strings.Repeat(" ", w[c]+3-len(r[c])))
		}
		out.WriteString(r[4])
		if r[5] != "" {
			out.WriteString(strings.Repeat(" ", w[4]+3-len(r[4])) + r[5])
		}
		out.WriteString("\n")
	}
	return nil
}

func (s *session) powerOnOff(id string, on bool, out *strings.Builder) error {
	if _, err := s.vm(id); err != nil {
		return err
	}
	cur := s.st.VMs[id].Power
	want, verb, word := "off", "Powering off VM:\n", "Power off failed\n"
	if on {
		want, verb, word = "on", "Powering on VM:\n", "Power on failed\n"
	}
	out.WriteString(verb)
	if cur == want {
		if strings.HasPrefix(s.st.Config.Version, "6.") {
			out.WriteString(word)
			return plainFailure{}
		}
		return invalidPowerState("powered"+strings.ToUpper(want[:1])+want[1:], "powered"+strings.ToUpper(cur[:1])+cur[1:], powerLabel(cur))
	}
	// A pending guest shutdown is moot once the VM is switched directly.
	var keep []task
	for _, t := range s.st.Tasks {
		if !(t.VMID == id && t.Op == "shutdownGuest") {
			keep = append(keep, t)
		}
	}
	s.st.Tasks = keep
	return s.setPower(id, want)
}

func (s *session) shutdown(id string) error {
	if _, err := s.vm(id); err != nil {
		return err
	}
	if p := s.st.VMs[id].Power; p != "on" {
		return invalidPowerState("poweredOff", "powered"+strings.ToUpper(p[:1])+p[1:], powerLabel(p))
	}
	if !s.toolsRunning(id) {
		return toolsUnavailable()
	}
	for _, t := range s.st.Tasks {
		if t.VMID == id && t.Op == "shutdownGuest" {
			return nil
		}
	}
	s.addTask(task{VMID: id, Op: "shutdownGuest"}, s.faults.ShutdownDelay)
	return nil
}

func (s *session) snapshotCreateCmd(args []string, out *strings.Builder) error {
	id := args[0]
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	name, desc, memory, quiesce := arg(1), arg(2), arg(3) == "1" || arg(3) == "true", arg(4) == "1" || arg(4) == "true"
	if name == "" {
		name = "Snapshot"
	}
	v, err := s.vm(id)
	if err != nil {
		return err
	}
	out.WriteString("Create Snapshot:\n")
	ds, err := s.datastoreOf(v.vmx)
	if err != nil {
		return err
	}
	switch {
	case s.faults.full(ds.Name):
		return &simFault{typ: "vim.fault.NoDiskSpace", fields: [][2]string{{"datastore", `"` + ds.Name + `"`}},
			msg: fmt.Sprintf("There is not enough space on the file system for the selected operation (datastore '%s').", ds.Name)}
	case s.faults.SnapshotCreateFail:
		return &simFault{typ: "vim.fault.GenericVmConfigFault", msg: "An error occurred while taking a snapshot: Failed to quiesce the virtual machine (simulated)."}
	case quiesce && s.st.VMs[id].Power == "on" && !s.toolsRunning(id):
		return toolsUnavailable()
	}
	t := task{VMID: id, Op: "createSnapshot", Name: name, Description: desc, Memory: memory, Quiesce: quiesce}
	if s.faults.SlowTasks > 0 {
		s.addTask(t, s.faults.SlowTasks)
		return nil
	}
	return s.createSnapshot(id, name, desc, memory)
}

// snapshotGet prints the tree: each level adds "--", with the host's misspelled "Desciption",
// its odd padding and unpadded dates.
func (s *session) snapshotGet(id string, out *strings.Builder) error {
	v, err := s.vm(id)
	if err != nil {
		return err
	}
	vmsd, err := v.readVMSD()
	if err != nil {
		return err
	}
	out.WriteString("Get Snapshot:\n")
	order, levels, _ := vmsd.treeOrder()
	for i, sn := range order {
		mark := "ROOT"
		if levels[i] > 0 {
			mark = "CHILD"
		}
		p := strings.Repeat("--", levels[i]+1)
		fmt.Fprintf(out, "%s|-%s\n", strings.Repeat("--", levels[i]), mark)
		fmt.Fprintf(out, "%sSnapshot Name        : %s\n", p, sn.Name)
		fmt.Fprintf(out, "%sSnapshot Id        : %s\n", p, sn.UID)
		fmt.Fprintf(out, "%sSnapshot Desciption  : %s\n", p, sn.Description)
		fmt.Fprintf(out, "%sSnapshot Created On  : %s\n", p, esxi.FormatSnapshotTime(sn.Created))
		fmt.Fprintf(out, "%sSnapshot State       : %s\n", p, s.snapState(id, sn.UID))
	}
	return nil
}

func (s *session) snapshotRemoveCmd(args []string, out *strings.Builder) error {
	byLevel := s.st.Config.RemoveByLevel
	if len(args) < 1 || (!byLevel && len(args) < 2) {
		return usageError("Insufficient arguments.\n" + removeUsage(byLevel))
	}
	v, err := s.vm(args[0])
	if err != nil {
		return err
	}
	vmsd, err := v.readVMSD()
	if err != nil {
		return err
	}
	var uid string
	removeChildren := false
	if byLevel {
		// vmid [removeChildren] [snapshotLevel] [snapshotIndex]; without a level: the current one.
		if len(args) > 1 {
			removeChildren = args[1] == "1" || args[1] == "true"
		}
		uid = vmsd.Current
		if len(args) > 3 {
			order, levels, indexes := vmsd.treeOrder()
			uid = ""
			for i, sn := range order {
				if strconv.Itoa(levels[i]) == args[2] && strconv.Itoa(indexes[i]) == args[3] {
					uid = sn.UID
				}
			}
		}
	} else {
		uid = args[1]
		if len(args) > 2 {
			removeChildren = args[2] == "1" || args[2] == "true"
		}
	}
	if uid == "" || vmsd.find(uid) < 0 {
		return &simFault{typ: "vim.fault.NotFound", msg: "The object or item referred to could not be found."}
	}
	out.WriteString("Remove Snapshot:\n")
	if s.fireRemoveFail() {
		return &simFault{typ: "vim.fault.GenericVmConfigFault", msg: "An error occurred while consolidating disks: Failed to lock the file (simulated)."}
	}
	if removeChildren {
		if err := s.removeSubtree(v, uid); err != nil {
			return err
		}
	} else if err := s.removeSnapshot(v.id, uid); err != nil {
		return err
	}
	return s.snapshotGet(v.id, out)
}

// removeSubtree removes a snapshot and everything below it, newest first.
func (s *session) removeSubtree(v *simVM, uid string) error {
	vmsd, err := v.readVMSD()
	if err != nil {
		return err
	}
	for _, c := range vmsd.Snaps {
		if c.Parent == uid {
			if err := s.removeSubtree(v, c.UID); err != nil {
				return err
			}
		}
	}
	return s.removeSnapshot(v.id, uid)
}

func (s *session) snapshotRemoveAll(id string, out *strings.Builder) error {
	v, err := s.vm(id)
	if err != nil {
		return err
	}
	out.WriteString("Remove All Snapshots:\n")
	if s.fireRemoveFail() {
		return &simFault{typ: "vim.fault.GenericVmConfigFault", msg: "An error occurred while consolidating disks: Failed to lock the file (simulated)."}
	}
	for {
		vmsd, err := v.readVMSD()
		if err != nil {
			return err
		}
		if len(vmsd.Snaps) == 0 {
			return nil
		}
		uid := vmsd.Current
		if uid == "" {
			uid = vmsd.Snaps[len(vmsd.Snaps)-1].UID
		}
		if err := s.removeSnapshot(v.id, uid); err != nil {
			return err
		}
	}
}

func (s *session) registerCmd(hostVMX string, out *strings.Builder) error {
	local, err := s.h.local(hostVMX)
	if err != nil || !exists(local) {
		return &simFault{typ: "vim.fault.NotFound", msg: "The object or item referred to could not be found."}
	}
	uuidVMX, err := s.uuidPath(local)
	if err != nil {
		return err
	}
	for _, e := range s.inv.Entries {
		if el, err := s.h.local(e.VMXCfgPath); err == nil && sameFile(el, local) {
			return &simFault{typ: "vim.fault.AlreadyExists", fields: [][2]string{{"name", `"` + e.ObjID + `"`}},
				msg: fmt.Sprintf("The specified key, name, or identifier '%s' already exists.", e.ObjID)}
		}
	}
	id, err := s.register(uuidVMX)
	if err != nil {
		return err
	}
	if !s.st.Config.RegisterSilent {
		out.WriteString(id + "\n")
	}
	return nil
}
