//go:build unix

package store

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A holder of the remote's turn that hangs (an operator's `meta append`
// at an ssh passphrase prompt, a push to a remote that stopped answering)
// costs the others only the optimisation. A write takes the log's lock
// first and then waits up to turnWait for the turn, holding the lock; so
// turnWait is far below lockWait, and of three concurrent writes to one
// clone (the hub's appends, two commands in one clone) none gives up with
// ErrBusy.
func TestTurnHungHolderDoesNotFailOtherWritesOfTheClone(t *testing.T) {
	if testing.Short() {
		t.Skip("waits turnWait")
	}
	remote := bareRemote(t)
	s := join(t, remote)
	s.turns = t.TempDir()
	stores := []*Store{s}
	for range 2 {
		o, err := Open(s.Root())
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		o.turns = s.turns
		stores = append(stores, o)
	}

	// The hung holder: another process of this user holds the turn.
	os.MkdirAll(s.turns, 0o700)
	f, err := os.OpenFile(filepath.Join(s.turns, turnKey(s.repo.RemoteURL(ctx))), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 200 * time.Millisecond)
			_, errs[i] = st.Append(ctx, note("a.example.com"), alice, time.Now(), AppendOptions{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v (busy: %v)", i, err, errors.Is(err, ErrBusy))
		}
	}
}
