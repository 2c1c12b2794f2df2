//go:build unix

package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
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
