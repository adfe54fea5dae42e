package libvirt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/snapferry/snapferry/transfer/replica"
)

// replicaRecord is what the last complete update of one domain's mirror left: the checkpoint
// its disks were read at and each far disk's mark. It is written only after the far side
// committed, so it may lag behind the mirror (a run killed between the two) but never run
// ahead of it: a lagging record names an older checkpoint, whose bitmap holds every change the
// newer run sent too, and marks the far disks no longer carry, so the next run compares them
// whole.
type replicaRecord struct {
	Target     string                `json:"target"`
	Set        string                `json:"set"`
	Domain     string                `json:"domain_uuid"`
	Checkpoint string                `json:"checkpoint"`
	Disks      map[string]recordDisk `json:"disks"` // by target (vda)
	Time       time.Time             `json:"time"`
}

type recordDisk struct {
	File string       `json:"file"`
	Size int64        `json:"size"`
	Mark replica.Mark `json:"mark"`
}

// maxRecord bounds a record read back (a few hundred bytes per disk).
const maxRecord = 1 << 20

// loadRecord reads a record; a missing one is nil, a damaged one too (with the next run
// comparing whole, nothing is lost but time).
func loadRecord(path string) (*replicaRecord, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read replica record: %w", err)
	}
	var rec replicaRecord
	if len(b) > maxRecord || json.Unmarshal(b, &rec) != nil {
		return nil, nil
	}
	return &rec, nil
}

// saveRecord replaces a record atomically. It is not fsynced: a record lost in a crash costs
// one whole compare, never a wrong mirror.
func saveRecord(path string, rec *replicaRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o700)
	}
	if err == nil {
		err = writeFileAtomic(path, b)
	}
	if err != nil {
		return fmt.Errorf("save replica record %s: %w", path, err)
	}
	return nil
}
