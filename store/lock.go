//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrBusy means another meta process kept the log locked for too long.
var ErrBusy = errors.New("another meta process is using the log")

// lockWait bounds how long a writer waits for another.
const lockWait = 30 * time.Second

// lock takes the log's writer lock: an flock on .git/meta/lock. The kernel
// releases it when its holder exits, however it exits, so a crashed meta
// never leaves the log stuck.
func lock(gitDir string) (release func(), err error) {
	dir := filepath.Join(gitDir, "meta")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock: %w", err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w (waited %s for %s)", ErrBusy, lockWait, f.Name())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
