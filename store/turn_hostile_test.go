//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A holder of the remote's turn that hangs (an operator's `meta append`
// at an ssh passphrase prompt, a push to a remote that stopped answering)
// costs the others only the optimisation, and so does a turn that keeps
// changing hands (a long queue of other clones' writers, or a holder that
// stamps the file again and again), which a waiter waits through up to
// turnMaxWait. Of three concurrent writes to one clone (the hub's appends,
// two commands in one clone) none gives up with ErrBusy: a write waits
// for the turn before it takes the clone's lock (when it waited holding
// the lock, the third write waited on it through two writes' whole turn
// waits, past lockWait).
func TestTurnTroubleDoesNotFailOtherWritesOfTheClone(t *testing.T) {
	if testing.Short() {
		t.Skip("waits turnWait and turnMaxWait")
	}
	for _, tc := range []struct {
		name   string
		stamps bool // the holder stamps the turn's file again and again
	}{
		{"a hung holder", false},
		{"a turn changing hands", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
			// The holder: another process of this user holds the turn.
			f, err := openTurnFile(s.turns, turnKey(s.repo.RemoteURL(ctx)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			if tc.stamps {
				go func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-time.After(turnWait / 4):
						}
						f.WriteAt([]byte(fmt.Sprintf("%20d %20d\n", 1000+i, time.Now().UnixNano())), 0)
					}
				}()
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
		})
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	names, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(names)
}

// A holder hung for good (an operator's meta at an ssh prompt overnight)
// costs a long-lived process (the hub) one wait for it, not one file and
// one thread blocked in flock for every write it gives up on: those used
// to pile up, a write at a time, until the process ran out of files
// (ulimit -n, 1024 by default) or threads (Go's 10,000).
func TestGivenUpTurnWaitsDoNotPileUp(t *testing.T) {
	dir, remote := t.TempDir(), "/srv/log.git"
	holdTurn(t, dir, remote)
	before := openFDs(t)
	for range 20 {
		takeTurnAt(ctx, dir, remote, 20*time.Millisecond)()
	}
	if grown := openFDs(t) - before; grown > 2 {
		t.Fatalf("20 waits given up on a hung holder left %d more files open", grown)
	}
}
