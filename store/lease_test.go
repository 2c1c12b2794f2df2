package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

var bob = &metav1.Actor{Name: "Bob", Email: "bob@example.com", Host: "desk"}

// Two operators lock the same app through the same remote at the same
// moment, again and again: every time exactly one holds the lock, the
// other is refused with ErrLocked, and the loser's clone keeps no trace of
// its attempt.
func TestLockRaceThroughOneRemoteHasOneWinner(t *testing.T) {
	remote := bareRemote(t)
	a, b := join(t, remote), join(t, remote)
	const rounds = 5
	for round := range rounds {
		domain := fmt.Sprintf("app%d.example.com", round)
		mustAppend(t, a, deploy(domain, "1.0.0"))
		if err := b.Pull(ctx); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, s := range []*Store{a, b} {
			actor := []*metav1.Actor{alice, bob}[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = s.Lock(ctx, domain, actor, time.Now(), 10*time.Minute, "mine", AppendOptions{})
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrLocked):
			default:
				t.Fatalf("round %d, operator %d: %v", round, i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d operators hold the lock (errors %v)", round, won, errs)
		}
		for _, s := range []*Store{a, b} {
			if err := s.Pull(ctx); err != nil {
				t.Fatal(err)
			}
			h, err := s.Head(domain)
			if err != nil {
				t.Fatal(err)
			}
			if h.Lock == nil || h.Events != 2 {
				t.Fatalf("round %d: head has lock %+v and %d events, want one lock event after the deploy", round, h.Lock, h.Events)
			}
			assertClean(t, s.Root())
		}
	}
	if n := strings.Count(git(t, remote, "log", "--format=%s", "main"), "lock "); n != rounds {
		t.Fatalf("the remote holds %d lock commits, want %d", n, rounds)
	}
}

func TestLeaseRules(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	t0 := time.Now()
	lock, err := s.Lock(ctx, "a.example.com", alice, t0, time.Minute, "upgrading postgres", AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Within the lease Bob is refused, and nothing is written.
	_, err = s.Append(ctx, upgrade("a.example.com", "2.0.0"), bob, t0.Add(30*time.Second), AppendOptions{})
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Lock.Holder != "Alice" || locked.Lock.Reason != "upgrading postgres" {
		t.Fatalf("Bob's append within the lease: %v", err)
	}
	if _, err := s.Unlock(ctx, "a.example.com", bob, t0.Add(30*time.Second), "", AppendOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Bob's unlock of Alice's lease: %v", err)
	}
	// --force goes ahead and names the lease it broke; the lease stays.
	forced, err := s.Append(ctx, upgrade("a.example.com", "2.0.0"), bob, t0.Add(31*time.Second), AppendOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if forced.Event.GetBrokeLock() != lock.Event.GetId() {
		t.Fatalf("broke_lock = %q, want %q", forced.Event.GetBrokeLock(), lock.Event.GetId())
	}
	h, _ := s.Head("a.example.com")
	if h.ActiveLock(t0.Add(32*time.Second)) == nil {
		t.Fatal("a forced append ended the lease")
	}
	// After the lease, Bob needs no force, and the head has no lock in force.
	after := lock.Event.GetLock().GetExpires().AsTime().Add(time.Second)
	if h.ActiveLock(after) != nil {
		t.Fatal("the lease outlived its expiry")
	}
	if _, err := s.Append(ctx, upgrade("a.example.com", "3.0.0"), bob, after, AppendOptions{}); err != nil {
		t.Fatalf("append after the lease: %v", err)
	}
	if _, err := s.Unlock(ctx, "a.example.com", alice, after, "", AppendOptions{}); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("unlock of an expired lease: %v", err)
	}
	// Observations are recorded whoever holds the lease.
	if _, err := s.Lock(ctx, "a.example.com", alice, after, time.Minute, "again", AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Observe(ctx, "a.example.com", &metav1.Observation{Service: "a_example_com_app", Version: "3.0.0"}, bob, after.Add(time.Second), AppendOptions{}); err != nil {
		t.Fatalf("observe under another's lease: %v", err)
	}
	for _, ttl := range []time.Duration{0, -time.Second, 25 * time.Hour} {
		if _, err := s.Lock(ctx, "a.example.com", alice, after, ttl, "", AppendOptions{}); err == nil {
			t.Errorf("lock --ttl %s: no error", ttl)
		}
	}
	assertClean(t, s.Root())
}
