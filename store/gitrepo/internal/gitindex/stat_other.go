//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package gitindex

import "os"

// StatOf takes what it can from fi; git re-reads a file whose other stat
// fields do not match, so missing fields cost speed, not correctness.
func StatOf(fi os.FileInfo) Stat {
	return Stat{Mtime: fi.ModTime(), Ctime: fi.ModTime(), Size: uint32(fi.Size())}
}
