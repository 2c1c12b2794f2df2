//go:build linux || darwin || freebsd || netbsd || openbsd

package gitindex

import (
	"os"
	"syscall"
)

// StatOf takes from fi what git keeps in the index. Values are truncated to
// 32 bits, as git does.
func StatOf(fi os.FileInfo) Stat {
	st := Stat{Mtime: fi.ModTime(), Ctime: fi.ModTime(), Size: uint32(fi.Size())}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Ctime = ctime(sys)
		st.Dev, st.Ino = uint32(sys.Dev), uint32(sys.Ino)
		st.UID, st.GID = sys.Uid, sys.Gid
	}
	return st
}
