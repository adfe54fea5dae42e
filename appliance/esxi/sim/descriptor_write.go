package sim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// baseDescriptor is a thin base disk's descriptor in the layout of the reference sample
// ("base thin disk"): sectors of the extent, the flat file's name, CID and identifiers.
func baseDescriptor(cid string, sectors int64, flat, longCID, uuid string) string {
	return fmt.Sprintf(`# Disk DescriptorFile
version=1
CID=%s
parentCID=ffffffff
isNativeSnapshot="no"
createType="vmfs"

# Extent description
RW %d VMFS "%s"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.deletable = "true"
ddb.encoding = "UTF-8"
ddb.geometry.cylinders = "%d"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.longContentID = "%s"
ddb.thinProvisioned = "1"
ddb.toolsVersion = "2147483647"
ddb.uuid = "%s"
ddb.virtualHWVersion = "19"
`, cid, sectors, flat, sectors/(255*63), longCID, uuid)
}

// deltaDescriptor is a snapshot delta's descriptor: seSparse (VMFS-6) or vmfsSparse (others), in
// the layout of the reference samples.
func deltaDescriptor(seSparse bool, cid, parentCID, parentHint string, sectors int64, data, longCID string) string {
	createType, extType, grain := "vmfsSparse", "VMFSSPARSE", ""
	if seSparse {
		createType, extType, grain = "seSparse", "SESPARSE", "ddb.grain = \"8\"\n"
	}
	return fmt.Sprintf(`# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=%s
parentCID=%s
isNativeSnapshot="no"
createType="%s"
parentFileNameHint="%s"
# Extent description
RW %d %s "%s"

# The Disk Data Base
#DDB

%sddb.longContentID = "%s"
`, cid, parentCID, createType, parentHint, sectors, extType, data, grain, longCID)
}

// rdmDescriptor is a raw device mapping's descriptor; physical selects passthrough compatibility.
func rdmDescriptor(physical bool, cid string, sectors int64, mapping string) string {
	createType := "vmfsRawDeviceMap"
	if physical {
		createType = "vmfsPassthroughRawDeviceMap"
	}
	return fmt.Sprintf(`# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=%s
parentCID=ffffffff
isNativeSnapshot="no"
createType="%s"

# Extent description
RW %d VMFSRDM "%s"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.virtualHWVersion = "19"
`, cid, createType, sectors, mapping)
}

// randomHex returns n random bytes as lowercase hex (CIDs, content ids, UUIDs).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// diskUUID formats 16 random bytes like ddb.uuid: "60 00 C2 90 d1 69 8c d2-f6 65 3b 98 be 64 04 5e".
func diskUUID() string {
	h := randomHex(16)
	out := make([]byte, 0, 47)
	for i := 0; i < 32; i += 2 {
		if i > 0 {
			if i == 16 {
				out = append(out, '-')
			} else {
				out = append(out, ' ')
			}
		}
		out = append(out, h[i:i+2]...)
	}
	return string(out)
}
