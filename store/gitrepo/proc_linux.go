package gitrepo

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes git die when meta does, however meta dies: a git
// fetch orphaned by a killed meta would otherwise race the next one.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
