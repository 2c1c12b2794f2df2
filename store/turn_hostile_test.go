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

// Review: a holder of the remote's turn that hangs (an operator's `meta
// append` at an ssh passphrase prompt, a push to a remote that stopped
// answering) is meant to cost the others only the optimisation: "a writer
// that cannot take it goes on without it". But a write takes the log's
// lock first and then waits turnWait (30s) for the turn, holding the lock;
// a second write to the same clone (the hub's concurrent appends, two
// operators' commands in one clone) waits lockWait (also 30s) for the lock
// and gives up with ErrBusy just as the first one goes on: of three
// concurrent writes, one fails and one takes a minute. Before the turn,
// each would have been done in a round trip.
func TestReviewHungTurnHolderFailsOtherWritesOfTheClone(t *testing.T) {
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
