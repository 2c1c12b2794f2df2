//go:build !linux

package gitrepo

import (
	"errors"
	"os/exec"
)

// dieWithParent has no portable equivalent outside Linux; a git process
// orphaned by a killed meta finishes on its own, and its lock files are
// broken as stale by the next meta.
func dieWithParent(cmd *exec.Cmd) {}

// syncFS has no portable equivalent: objects are synced a file at a time.
func syncFS(dir string) error { return errors.ErrUnsupported }
