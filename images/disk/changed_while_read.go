package disk

import (
	"fmt"
	"os"
)

// changedWhileRead says, for a regular file whose backup just read size bytes, whether it grew
// or was modified meanwhile ("" when not, or when it cannot tell: a device, a failed stat). A
// grown file is stored as its first size bytes, a consistent prefix of what it was when the
// backup began but not the file as it is now; a modified one may mix old and new blocks.
// Either is worth a word: the backup is not what the user may think it is.
func changedWhileRead(f *os.File, before os.FileInfo, size int64) string {
	if before == nil || !before.Mode().IsRegular() {
		return ""
	}
	after, err := f.Stat()
	if err != nil {
		return ""
	}
	switch {
	case after.Size() > size:
		return fmt.Sprintf("%s grew from %d to %d bytes while being read: the snapshot holds its first %d bytes (back up a frozen copy or snapshot to get all of it)",
			f.Name(), size, after.Size(), size)
	case !after.ModTime().Equal(before.ModTime()):
		return fmt.Sprintf("%s was modified while being read: the snapshot may mix blocks from before and after the change (back up a frozen copy or snapshot)", f.Name())
	}
	return ""
}
