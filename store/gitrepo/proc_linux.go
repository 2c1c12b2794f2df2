package gitrepo

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// dieWithParent makes git die when meta does, however meta dies: a git
// fetch orphaned by a killed meta would otherwise race the next one.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// syncFS makes everything written to the file system that holds dir
// durable, in one syncfs(2): cheaper than an fsync a file once a chain
// has written more than a few objects.
func syncFS(dir string) error {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return unix.Syncfs(fd)
}
