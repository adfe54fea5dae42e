package vmx

import (
	"regexp"
	"strconv"
	"strings"
)

// Disk is a disk entry of a .vmx, before its descriptor is read.
type Disk struct {
	Device     string // "scsi0:1"
	FileName   string // as written: relative to the .vmx folder or an absolute /vmfs/volumes path
	Mode       string // "", "persistent", "independent-persistent", "independent-nonpersistent"...
	DeviceType string // "scsi-hardDisk", "rawDisk", "" (IDE disks have none)
}

// Independent reports a mode that keeps the disk out of snapshots.
func (d Disk) Independent() bool { return strings.Contains(strings.ToLower(d.Mode), "independent") }

var diskDeviceRe = regexp.MustCompile(`^(scsi|sata|nvme|ide)(\d+):(\d+)$`)

// notDiskTypes are device types that can carry a fileName but are not virtual disks.
var notDiskTypes = map[string]bool{"cdrom-image": true, "atapi-cdrom": true, "cdrom-raw": true, "scsi-passthru": true}

// Disks lists the present disks of a .vmx in file order (that order names them vmdk0, vmdk1...).
// A disk is a scsiX:Y / sataX:Y / nvmeX:Y / ideX:Y prefix whose .present is TRUE, whose
// controller is not marked absent, and whose fileName ends in .vmdk.
func (v *File) Disks() []Disk {
	var disks []Disk
	seen := map[string]bool{}
	for _, key := range v.Keys {
		dot := strings.LastIndexByte(key, '.')
		if dot < 0 {
			continue
		}
		dev := strings.ToLower(key[:dot])
		m := diskDeviceRe.FindStringSubmatch(dev)
		if m == nil || seen[dev] {
			continue
		}
		seen[dev] = true
		if !v.True(dev+".present") || strings.EqualFold(v.Value(m[1]+m[2]+".present"), "false") {
			continue
		}
		file := v.Value(dev + ".fileName")
		devType := v.Value(dev + ".deviceType")
		if !strings.HasSuffix(strings.ToLower(file), ".vmdk") || notDiskTypes[strings.ToLower(devType)] {
			continue
		}
		disks = append(disks, Disk{Device: dev, FileName: file, Mode: v.Value(dev + ".mode"), DeviceType: devType})
	}
	return disks
}

// DiskName is the name a disk has in snapshots and --exclude-disk: vmdk0, vmdk1... by .vmx order.
func DiskName(i int) string { return "vmdk" + strconv.Itoa(i) }
