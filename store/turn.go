//go:build unix

package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The remote's turn. Writers on one machine whose clones share a remote
// (an operator's clones, the bench's writers, a hub and an operator's
// meta) take turns at it: a write holds the turn from its fetch to its
// push, so at most one round trip to the remote is in flight per remote
// and machine, and the push of the one holding it is not refused for
// another local writer's. Without it, N writers all fetch, all commit,
// all push, one wins and N-1 fetch, replay and push again, with backoff:
// the work grows with N squared and throughput falls with every writer
// added (issue 18). With it, the writers queue on a lock and each round
// trip succeeds at once; and appends that find the turn taken are handed
// to its holder, who records them with its own in one round trip
// (spool.go).
//
// The turn is an flock on a file under the user's cache directory
// (os.UserCacheDir()/meta/turns/<hash of the remote's URL>): the kernel
// releases it when its holder exits, however it exits, so a SIGKILLed
// holder never blocks the others. It is only an optimisation: writers on
// other machines, or of other users, do not share it, and a writer that
// cannot take it (no cache directory, a holder hung past turnWait) goes on
// without it. Correctness rests, as before, on the remote refusing a push
// that is not a fast-forward, and on the retry path in push and Write.

// turnWait bounds how long a write waits for one holder of the remote's
// turn before it goes on without it: a holder keeps it for one round
// trip, and a write that sees the turn change hands keeps waiting (up to
// turnMaxWait), so a queue of 32 writers taking turns is waited through,
// not abandoned for the race the turn exists to spare. A write waits for
// the turn before it takes its clone's lock (write.go), so that however
// long the waits, a hung holder (an ssh prompt, a key waiting for a touch)
// or a queue that keeps changing hands does not make the clone's other
// writes give up on that lock.
const turnWait = 5 * time.Second

// turnMaxWait bounds a write's whole wait for the turn, however often it
// changes hands meanwhile (flock is not first come, first served).
const turnMaxWait = 20 * time.Second

// turnCheck is how often a waiter looks whether the turn changed hands.
const turnCheck = 100 * time.Millisecond

// turnsDir is where the turns of this user's writers live.
func turnsDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "meta", "turns")
}

// takeTurn waits for this machine's turn at the remote the log syncs with
// and returns what gives it back. It never fails: without the turn, the
// write goes on as writers on different machines do.
func (s *Store) takeTurn(ctx context.Context) (release func()) {
	if s.turns == "" || heldTurn(ctx) {
		return func() {}
	}
	return takeTurnAt(ctx, s.turns, s.repo.RemoteURL(ctx), turnWait)
}

// takeTurnAt takes the turn for remote in dir, waiting at most wait for
// any one holder and turnMaxWait in all.
func takeTurnAt(ctx context.Context, dir, remote string, wait time.Duration) (release func()) {
	none := func() {}
	if remote == "" {
		return none
	}
	f, err := openTurnFile(dir, turnKey(remote))
	if err != nil {
		return none
	}
	counter, _ := abandoned.LoadOrStore(f.Name(), new(atomic.Int32))
	inFlight := counter.(*atomic.Int32)
	if inFlight.Load() > 0 {
		// A wait this process gave up on is still blocked in flock: its
		// holder is hung, or the turn was busy past turnMaxWait. Another
		// blocking flock would add a blocked thread and an open file a
		// write, until the process runs out of them: this wait asks
		// without blocking, now and then, up to wait.
		return pollTurn(ctx, f, wait)
	}
	// A blocking flock, not polling: the kernel hands the turn over the
	// moment it is given back, and waiters cost no CPU (polling 32 writers
	// every few milliseconds cost more than the gaps it left). It blocks
	// a thread, so it runs in a goroutine the wait can give up on.
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	start := time.Now()
	holder, since := turnHolder(f), start
	tick := time.NewTicker(turnCheck)
	defer tick.Stop()
	for {
		select {
		case err := <-got:
			if err != nil {
				f.Close()
				return none
			}
			return holdTurnFile(f)
		case now := <-tick.C:
			if h := turnHolder(f); h != holder {
				holder, since = h, now
			}
			if now.Sub(since) < wait && now.Sub(start) < turnMaxWait {
				continue
			}
		case <-ctx.Done():
		}
		break
	}
	// Given up: should the flock be granted later, give it straight back.
	inFlight.Add(1)
	go func() {
		if <-got == nil {
			syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
		f.Close()
		inFlight.Add(-1)
	}()
	return none
}

// holdTurnFile stamps the turn f now holds, so that waiters see it change
// hands, and returns what gives it back.
func holdTurnFile(f *os.File) (release func()) {
	stampTurn(f)
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }
}

// stampTurn marks the turn f now holds as this holder's.
func stampTurn(f *os.File) {
	stamp := fmt.Sprintf("%20d %20d\n", os.Getpid(), time.Now().UnixNano())
	f.WriteAt([]byte(stamp), 0)
}

// openTurnFile opens the file of the turn named key in dir, made when
// missing.
func openTurnFile(dir, key string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, key), os.O_RDWR|os.O_CREATE, 0o600)
}

// pollTurn takes the turn f names if it is free within wait, asking
// without blocking every turnCheck.
func pollTurn(ctx context.Context, f *os.File, wait time.Duration) (release func()) {
	deadline := time.Now().Add(wait)
	for {
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			return holdTurnFile(f)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return func() {}
		}
		select {
		case <-ctx.Done():
		case <-time.After(turnCheck):
		}
	}
}

// abandoned counts, per turn file, the flocks this process gave up
// waiting for that are still blocked (takeTurnAt).
var abandoned sync.Map // path -> *atomic.Int32

// turnHolder is the stamp the turn's last holder wrote.
func turnHolder(f *os.File) string {
	buf := make([]byte, 42)
	n, _ := f.ReadAt(buf, 0)
	return string(buf[:n])
}

// turnKey names the turn of a remote: a hash of its URL, so that the name
// is a file name and a token an https URL carries is not written down.
// Spellings of one remote that differ only by the user or password in the
// URL, or a trailing slash, share a turn; other spellings (a path and its
// file:// URL) only cost the optimisation, not correctness.
func turnKey(remote string) string {
	remote = strings.TrimRight(remote, "/")
	if u, err := url.Parse(remote); err == nil && u.Scheme != "" && u.Host != "" {
		u.User = nil
		remote = u.String()
	} else if filepath.IsAbs(remote) {
		remote = filepath.Clean(remote)
	}
	sum := sha256.Sum256([]byte(remote))
	return hex.EncodeToString(sum[:16])
}
