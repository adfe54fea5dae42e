package disk

import (
	"bytes"
	"os"
)

// pageSize is the granularity at which WriteSparse leaves zeros unwritten: the allocation unit
// of ext4, XFS and VMFS6 small blocks.
const pageSize = 4096

// WriteSparse writes data at off into a file that reads as zeros there (freshly truncated or
// extended), leaving out every file page (4 KiB, aligned to the file, not to data) that data
// would fill with zeros only, so the file stays sparse. It returns the first write error.
func WriteSparse(f *os.File, data []byte, off int64) error {
	var zero [pageSize]byte
	start := -1 // start in data of the pending run of non-zero pages
	for p := 0; p < len(data); {
		end := min(p+pageSize-int((off+int64(p))%pageSize), len(data))
		if bytes.Equal(data[p:end], zero[:end-p]) {
			if start >= 0 {
				if _, err := f.WriteAt(data[start:p], off+int64(start)); err != nil {
					return err
				}
				start = -1
			}
		} else if start < 0 {
			start = p
		}
		p = end
	}
	if start >= 0 {
		_, err := f.WriteAt(data[start:], off+int64(start))
		return err
	}
	return nil
}
