//go:build unix

package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// appendOptsInBackground appends ev to s as actor with opts and delivers
// the result.
func appendOptsInBackground(s *Store, ev *metav1.Event, actor *metav1.Actor, opts AppendOptions) <-chan appendResult {
	got := make(chan appendResult, 1)
	go func() {
		out, err := s.Append(ctx, ev, actor, time.Now(), opts)
		got <- appendResult{out, err}
	}()
	return got
}

// Two writers that both expect the app at 1.0.0 are a compare-and-set: on
// the direct path the second finds the first's event and is refused. Spooled
// into one group, the second's expectation must be judged on the head the
// first's event makes, not on the head the group started from.
func TestSpooledExpectSeesTheEventGroupedBeforeIt(t *testing.T) {
	remote, clones, dir := spoolClones(t, 3)
	mustAppend(t, clones[2], deploy("a.example.com", "1.0.0"))
	release := holdTurnHere(t, clones[2])
	a := appendOptsInBackground(clones[0], deploy("a.example.com", "2.0.0"), alice, AppendOptions{Expect: "1.0.0"})
	b := appendOptsInBackground(clones[1], deploy("a.example.com", "3.0.0"), bob, AppendOptions{Expect: "1.0.0"})
	spooled(t, dir, 2)
	release()
	won := 0
	for i, r := range []<-chan appendResult{a, b} {
		got := <-r
		switch {
		case got.err == nil:
			won++
		case errors.Is(got.err, ErrUnexpected):
		default:
			t.Fatalf("writer %d: %v", i, got.err)
		}
	}
	if won != 1 {
		t.Errorf("%d writers that expected a.example.com at 1.0.0 appended, want 1:\n%s", won, git(t, remote, "log", "--format=%s", "main"))
	}
}

// Two writers start the log of one new app, one naming its project: on the
// direct path the second finds where the first put it. Spooled into one
// group, the app must not be started in two places at once.
func TestSpooledNewAppIsStartedInOnePlace(t *testing.T) {
	remote, clones, dir := spoolClones(t, 3)
	release := holdTurnHere(t, clones[2])
	a := appendOptsInBackground(clones[0], deploy("new.example.com", "1.0.0"), alice, AppendOptions{})
	named := deploy("new.example.com", "1.0.0")
	named.Address.Project = "other"
	b := appendOptsInBackground(clones[1], named, bob, AppendOptions{})
	spooled(t, dir, 2)
	release()
	for _, r := range []<-chan appendResult{a, b} {
		if got := <-r; got.err != nil && !errors.Is(got.err, ErrMoved) {
			t.Fatal(got.err)
		}
	}
	places := map[string]bool{}
	for _, p := range strings.Fields(git(t, remote, "ls-tree", "-r", "--name-only", "main")) {
		if i := strings.Index(p, "/new.example.com/"); i >= 0 {
			places[p[:i]] = true
		}
	}
	if len(places) != 1 {
		t.Errorf("new.example.com's log was started in %d places: %v", len(places), places)
	}
}

// Append's now is the write's time, whoever records it: a lease that ended
// before now does not refuse the append because the turn was free.
func TestAnAppendOnAFreeTurnKeepsItsClock(t *testing.T) {
	_, clones, _ := spoolClones(t, 1)
	s := clones[0]
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	// The package's clock: ids made earlier in the package may be dated
	// ahead of the wall clock, and an event's time is its id's.
	t0, err := record.IDTime(record.NewID(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, "a.example.com", alice, t0, time.Minute, "upgrading", AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, upgrade("a.example.com", "2.0.0"), bob, t0.Add(2*time.Minute), AppendOptions{}); err != nil {
		t.Fatalf("an append after the lease ended: %v", err)
	}
}

// What lies in the spool under a request's or an answer's name but is no
// file to read at once (a FIFO, a link to one) does not stop the holder
// nor a waiter: it is answered, or passed over, not waited on.
func TestASpoolFIFOBlocksNobody(t *testing.T) {
	remote, clones, dir := spoolClones(t, 2)
	s := clones[0]
	mustUseSpool(t, s, dir)
	fifo, linked := record.NewID(time.Now()), record.NewID(time.Now())
	elsewhere := filepath.Join(t.TempDir(), "fifo")
	for _, p := range []string{filepath.Join(dir, fifo+".req"), elsewhere} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, linked+".req")); err != nil {
		t.Fatal(err)
	}
	// unblock lets readers stuck on FIFOs go, until got delivers, once
	// the test gave up on them.
	unblock := func(got <-chan appendResult, paths ...string) {
		for {
			for _, p := range paths {
				if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			}
			select {
			case <-got:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	done := make(chan appendResult, 1)
	go func() {
		out, err := s.Append(ctx, deploy("a.example.com", "1.0.0"), alice, time.Now(), AppendOptions{})
		done <- appendResult{out, err}
	}()
	select {
	case got := <-done:
		if got.err != nil || !got.out.Pushed {
			t.Fatalf("the holder's append: %+v, %v", got.out, got.err)
		}
	case <-time.After(15 * time.Second):
		unblock(done, filepath.Join(dir, fifo+".claimed"), elsewhere)
		t.Fatal("the holder waited on a FIFO in the spool")
	}
	for _, id := range []string{fifo, linked} {
		if n := recordedTimes(t, remote, id); n != 0 {
			t.Errorf("request %s was recorded", id)
		}
	}

	// A waiter whose answer is a FIFO goes direct, as on garbage.
	release := holdTurnHere(t, clones[1])
	result := appendInBackground(s, deploy("b.example.com", "1.0.0"), bob)
	id := spooled(t, dir, 1)[0]
	if err := os.Rename(filepath.Join(dir, id+".req"), filepath.Join(dir, id+".claimed")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, id+".res"), 0o600); err != nil {
		t.Fatal(err)
	}
	release()
	select {
	case got := <-result:
		if got.err != nil || !got.out.Pushed || got.out.Event.GetId() != id {
			t.Fatalf("the waiter's append: %+v, %v", got.out, got.err)
		}
	case <-time.After(15 * time.Second):
		unblock(result, filepath.Join(dir, id+".res"))
		t.Fatal("the waiter waited on a FIFO for its answer")
	}
	if n := recordedTimes(t, remote, id); n != 1 {
		t.Errorf("event %s is recorded %d times", id, n)
	}
}

// A waiter is told what concerns its append: not the holder's clone's own
// business, such as files left uncommitted in that clone's work tree.
func TestAWaiterIsNotWarnedOfTheHoldersClone(t *testing.T) {
	_, clones, dir := spoolClones(t, 2)
	holder := clones[1]
	writeRaw(t, filepath.Join(holder.Root(), "stray.txt"), []byte("mine"))
	key := turnKey(holder.repo.RemoteURL(ctx))
	f, err := openTurnFile(holder.turns, key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !tryTurn(f) {
		t.Fatal("the turn is taken")
	}
	stampTurn(f)
	result := appendInBackground(clones[0], deploy("a.example.com", "1.0.0"), bob)
	spooled(t, dir, 1)
	// The holder's own append, with the turn it holds.
	own, err := holder.serveSpool(ctx, f, key, deploy("b.example.com", "1.0.0"), alice, time.Now(), AppendOptions{ID: record.NewID(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	got := <-result
	if got.err != nil || !got.out.Pushed {
		t.Fatalf("the waiter: %+v, %v", got.out, got.err)
	}
	if len(own.Warnings) == 0 {
		t.Fatal("the holder was not warned of its stray file: the test proves nothing")
	}
	for _, w := range got.out.Warnings {
		if strings.Contains(w, "stray.txt") {
			t.Errorf("the waiter was warned of the holder's clone: %s", w)
		}
	}
}
