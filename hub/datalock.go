//go:build unix

package hub

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrDataInUse means another hub runs on the same data directory: two
// JetStream servers on the same files would corrupt them.
var ErrDataInUse = errors.New("another meta serve uses this data directory")

// lockData takes the hub's lock on its data directory: an flock on
// DIR/meta-serve.lock, which holds the holder's pid. The kernel releases
// it when the holder exits, however it exits, so a killed hub leaves no
// stale lock behind.
func lockData(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "meta-serve.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		holder := ""
		if b, _ := io.ReadAll(io.LimitReader(f, 32)); len(b) > 0 {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		return nil, fmt.Errorf("%w: %s%s; stop it, or give this one its own --data", ErrDataInUse, dir, holder)
	}
	// The pid is for the message above; the lock itself is the flock.
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
