package tree

import (
	"io/fs"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/repo"
)

// nodeFromStat fills the metadata of a node from an lstat result. Times are UTC so equal trees
// encode to equal bytes on hosts in different time zones.
func nodeFromStat(name string, st *unix.Stat_t) repo.Node {
	n := repo.Node{
		Name:       name,
		Mode:       uint32(fileMode(st.Mode)),
		UID:        st.Uid,
		GID:        st.Gid,
		ModTime:    time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC(),
		AccessTime: time.Unix(st.Atim.Sec, st.Atim.Nsec).UTC(),
		ChangeTime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec).UTC(),
		Inode:      st.Ino,
		DeviceID:   uint64(st.Dev),
		Links:      uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = repo.NodeFile
		n.Size = uint64(st.Size)
	case unix.S_IFDIR:
		n.Type = repo.NodeDir
	case unix.S_IFLNK:
		n.Type = repo.NodeSymlink
		// Reading the target bumps a symlink's atime (readlink has no O_NOATIME), so the
		// next backup would see a new value and store new trees: symlinks keep no atime and
		// restore gives them their mtime.
		n.AccessTime = time.Time{}
	case unix.S_IFBLK:
		n.Type = repo.NodeDev
		n.Rdev = uint64(st.Rdev)
	case unix.S_IFCHR:
		n.Type = repo.NodeCharDev
		n.Rdev = uint64(st.Rdev)
	case unix.S_IFIFO:
		n.Type = repo.NodeFifo
	case unix.S_IFSOCK:
		n.Type = repo.NodeSocket
	}
	return n
}

type modeBit struct {
	unix uint32
	mode fs.FileMode
}

// specialBits pairs the setuid, setgid and sticky bits of st_mode with their fs.FileMode bits
// (a function returning an array value, so there is no shared mutable table).
func specialBits() [3]modeBit {
	return [3]modeBit{{unix.S_ISUID, fs.ModeSetuid}, {unix.S_ISGID, fs.ModeSetgid}, {unix.S_ISVTX, fs.ModeSticky}}
}

// fileMode converts st_mode to an fs.FileMode, the form Node.Mode stores.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	for _, b := range specialBits() {
		if m&b.unix != 0 {
			mode |= b.mode
		}
	}
	return mode
}

// unixPerm is the inverse for chmod: permission bits plus setuid, setgid and sticky.
func unixPerm(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	for _, b := range specialBits() {
		if mode&b.mode != 0 {
			m |= b.unix
		}
	}
	return m
}
