package sim

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// hostConfig is how the simulated host behaves: version strings and syntax variants.
type hostConfig struct {
	Version string `json:"version"` // "6.5.0"
	Build   string `json:"build"`   // "10719125"
	Update  string `json:"update"`  // "Update 2", for vmware -l
	// RemoveByLevel makes snapshot.remove take the older [removeChildren] [level] [index] syntax.
	RemoveByLevel bool `json:"remove_by_level"`
	// RegisterSilent makes solo/registervm print nothing on success, as older hosts do.
	RegisterSilent bool `json:"register_silent"`
	// Acceptance is the host acceptance level (`esxcli software acceptance get`); "" means
	// PartnerSupported, the default of an installed host.
	Acceptance string `json:"acceptance,omitempty"`
	// SecureBoot is UEFI Secure Boot: the host refuses to lower its acceptance level to
	// CommunitySupported. RequireSecureBoot and ExecInstalledOnly are the TPM-enforced
	// settings `esxcli system settings encryption get` shows.
	SecureBoot        bool `json:"secure_boot,omitempty"`
	RequireSecureBoot bool `json:"require_secure_boot,omitempty"`
	ExecInstalledOnly bool `json:"exec_installed_only,omitempty"`
}

// installedVIB is a VIB `esxcli software vib install` installed.
type installedVIB struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Vendor      string   `json:"vendor"`
	Acceptance  string   `json:"acceptance"` // host level name, e.g. CommunitySupported
	InstallDate string   `json:"install_date"`
	Files       []string `json:"files"`
}

// datastoreState is one simulated datastore.
type datastoreState struct {
	Name     string `json:"name"`
	UUID     string `json:"uuid"`
	Type     string `json:"type"` // VMFS-6, VMFS-5, NFS
	Capacity int64  `json:"capacity"`
	Reserved int64  `json:"reserved,omitempty"`
}

// vmState is the runtime state of a registered VM: what is not in its files.
type vmState struct {
	Power          string `json:"power"` // "on", "off", "suspended"
	ToolsInstalled bool   `json:"tools_installed"`
	// SnapStates is each snapshot's power state when taken ("powered on"), by snapshot uid.
	SnapStates map[string]string `json:"snap_states,omitempty"`
}

// task is a host task that completes later (slow-tasks fault).
type task struct {
	ID   int       `json:"id"`
	VMID string    `json:"vmid"`
	Op   string    `json:"op"` // createSnapshot, shutdownGuest
	Due  time.Time `json:"due"`
	// createSnapshot arguments
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Memory      bool   `json:"memory,omitempty"`
	Quiesce     bool   `json:"quiesce,omitempty"`
}

// state is ROOT/.esxisim/state.json.
type state struct {
	Config     hostConfig          `json:"config"`
	Datastores []datastoreState    `json:"datastores"`
	VMs        map[string]*vmState `json:"vms"`
	Tasks      []task              `json:"tasks"`
	NextVMID   int                 `json:"next_vmid"`
	NextTaskID int                 `json:"next_task_id"`
	EventSeq   int                 `json:"event_seq"`
	// FaultUses counts how often a counted fault ("snapshot-remove-fail=2") has fired.
	FaultUses map[string]int `json:"fault_uses"`
	// VIBs are the packages installed with esxcli (the host's own VMware VIBs are not listed).
	VIBs []installedVIB `json:"vibs,omitempty"`
}

func newState() *state {
	return &state{
		Config:     hostConfig{Version: "6.5.0", Build: "10719125", Update: "Update 2"},
		VMs:        map[string]*vmState{},
		NextVMID:   1,
		NextTaskID: 2800,
		FaultUses:  map[string]int{},
	}
}

func (h *Host) statePath() string { return filepath.Join(h.meta, "state.json") }

func (h *Host) loadState() (*state, error) {
	b, err := os.ReadFile(h.statePath())
	if err != nil {
		return nil, fmt.Errorf("load simulator state: %w (is %s a simulated host? create it with esxisim init)", err, h.Root)
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("load simulator state %s: %w", h.statePath(), err)
	}
	if st.VMs == nil {
		st.VMs = map[string]*vmState{}
	}
	if st.FaultUses == nil {
		st.FaultUses = map[string]int{}
	}
	return st, nil
}

func (h *Host) saveState(st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("save simulator state: %w", err)
	}
	return writeFileAtomic(h.statePath(), b)
}

// writeFileAtomic writes a file through a temp name and rename, so a reader never sees half of it.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// inventory is /etc/vmware/hostd/vmInventory.xml.
type inventory struct {
	XMLName xml.Name         `xml:"ConfigRoot"`
	Entries []inventoryEntry `xml:"ConfigEntry"`
}

type inventoryEntry struct {
	ID         string `xml:"id,attr"`
	ObjID      string `xml:"objID"`
	SecDomain  string `xml:"secDomain"`
	VMXCfgPath string `xml:"vmxCfgPath"`
}

func (h *Host) inventoryPath() string {
	return filepath.Join(h.meta, "etc", "vmware", "hostd", "vmInventory.xml")
}

func (h *Host) loadInventory() (*inventory, error) {
	b, err := os.ReadFile(h.inventoryPath())
	if errors.Is(err, fs.ErrNotExist) {
		return &inventory{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load inventory: %w", err)
	}
	var inv inventory
	if err := xml.Unmarshal(b, &inv); err != nil {
		return nil, fmt.Errorf("load inventory %s: %w", h.inventoryPath(), err)
	}
	return &inv, nil
}

func (h *Host) saveInventory(inv *inventory) error {
	for i := range inv.Entries {
		inv.Entries[i].ID = fmt.Sprintf("%04d", i)
	}
	b, err := xml.MarshalIndent(inv, "", "  ")
	if err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(h.inventoryPath()), 0o755); err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	return writeFileAtomic(h.inventoryPath(), append(b, '\n'))
}

// vmxOf returns the host path of a registered VM's .vmx.
func (inv *inventory) vmxOf(id string) (string, bool) {
	for _, e := range inv.Entries {
		if e.ObjID == id {
			return e.VMXCfgPath, true
		}
	}
	return "", false
}
