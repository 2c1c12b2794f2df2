//go:build unix

package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestConcurrentWritersInSeparateClones runs writers, each in a clone of
// its own, against one bare remote at once: every append reaches the
// remote once, none is lost or doubled, and every clone ends up at the
// remote's tip. Writers on one machine share the remote's turn; writers
// on different machines (a turns directory each) race and retry.
func TestConcurrentWritersInSeparateClones(t *testing.T) {
	for _, tc := range []struct {
		name     string
		machines int // the writers are spread over this many turn dirs
	}{
		{"one machine", 1},
		{"two machines", 2},
		{"a machine each", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const writers, each = 8, 4
			remote := bareRemote(t)
			turns := make([]string, tc.machines)
			for i := range turns {
				turns[i] = t.TempDir()
			}
			clones := make([]*Store, writers)
			for w := range clones {
				clones[w] = join(t, remote)
				clones[w].turns = turns[w%tc.machines]
			}
			var wg sync.WaitGroup
			ids := make([][]string, writers)
			errs := make(chan error, writers*each)
			for w, s := range clones {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						out, err := s.Append(ctx, note(fmt.Sprintf("app%d.example.com", w%3)), alice, time.Now(), AppendOptions{})
						if err != nil {
							errs <- fmt.Errorf("writer %d, append %d: %w", w, i, err)
							continue
						}
						if !out.Pushed && tc.machines == 1 {
							// Writers sharing one turn never reject each
							// other's pushes; racing across machines, a
							// push may lose its 10 tries under load, and
							// the event then waits for a sync (below),
							// as documented.
							errs <- fmt.Errorf("writer %d, append %d not pushed: %v", w, i, out.Warnings)
						}
						ids[w] = append(ids[w], out.Event.GetId())
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			var want []string
			for _, w := range ids {
				want = append(want, w...)
			}
			slices.Sort(want)
			// Every clone syncs (pushing what its appends could not), then
			// every one again: all at the remote's tip.
			for round := range 2 {
				for w, s := range clones {
					if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
						t.Fatalf("clone %d, sync %d: %v", w, round, err)
					}
				}
			}
			tip := git(t, remote, "rev-parse", "main")
			for w, s := range clones {
				if head := git(t, s.Root(), "rev-parse", "HEAD"); head != tip {
					t.Errorf("clone %d is at %s, the remote at %s", w, head, tip)
				}
				evs, err := s.Log("", 0)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, ev := range evs {
					got = append(got, ev.GetId())
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("clone %d holds %d events, want the %d appended:\n%v\n%v", w, len(got), len(want), got, want)
				}
				assertClean(t, s.Root())
			}
			// One commit per append on the remote: none doubled by a replay.
			if n := strings.Count(git(t, remote, "log", "--format=%s", "main"), "\n") + 1; n != writers*each+1 {
				t.Errorf("the remote has %d commits, want %d appends and the start", n, writers*each)
			}
		})
	}
}

// holdTurn starts a process that takes the turn for remote in dir and
// keeps it until killed; it returns once the process holds it.
func holdTurn(t *testing.T, dir, remote string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTurnHolderProcess$")
	cmd.Env = append(os.Environ(), "META_TEST_TURN_DIR="+dir, "META_TEST_TURN_REMOTE="+remote)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("the holder said %q, %v", line, err)
	}
	return cmd
}

// TestTurnHolderProcess is the process holdTurn starts; run alone, it
// does nothing.
func TestTurnHolderProcess(t *testing.T) {
	dir, remote := os.Getenv("META_TEST_TURN_DIR"), os.Getenv("META_TEST_TURN_REMOTE")
	if dir == "" {
		t.Skip("started by holdTurn only")
	}
	takeTurnAt(context.Background(), dir, remote, time.Minute)
	fmt.Println("held")
	select {}
}

// TestKilledTurnHolderDoesNotBlockOthers: a write waits while another
// process holds the remote's turn, and goes through as soon as that
// process is SIGKILLed, for the kernel gives its flock back.
func TestKilledTurnHolderDoesNotBlockOthers(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	s.turns = t.TempDir()
	holder := holdTurn(t, s.turns, s.repo.RemoteURL(ctx))
	done := make(chan error, 1)
	go func() {
		out, err := s.Append(ctx, note("a.example.com"), alice, time.Now(), AppendOptions{})
		if err == nil && !out.Pushed {
			err = fmt.Errorf("not pushed: %v", out.Warnings)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the append did not wait for the turn: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	killed := time.Now()
	if err := holder.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the append still waits after its holder was killed")
	}
	if waited := time.Since(killed); waited > 5*time.Second {
		t.Errorf("the append went on %s after the holder died", waited)
	}
}

// TestHungTurnHolderIsWaitedForAWhile: a holder that never gives the
// turn back (hung on a remote, stopped) holds others up for the wait only;
// they go on without the turn, and the turn, once free, is taken again.
func TestHungTurnHolderIsWaitedForAWhile(t *testing.T) {
	dir, remote := t.TempDir(), "/srv/log.git"
	holder := holdTurn(t, dir, remote)
	start := time.Now()
	release := takeTurnAt(ctx, dir, remote, 200*time.Millisecond)
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 5*time.Second {
		t.Errorf("waited %s for a hung holder, want the 200ms bound", waited)
	}
	release() // the turn it did not get: gives back nothing
	holder.Process.Kill()
	holder.Wait()
	start = time.Now()
	release = takeTurnAt(ctx, dir, remote, 10*time.Second)
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("a free turn took %s: the given-up wait kept it", waited)
	}
	// Taken now: another waits for it.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	other := make(chan struct{})
	go func() { takeTurnAt(cctx, dir, remote, time.Minute)(); close(other) }()
	select {
	case <-other:
		if cctx.Err() == nil {
			t.Fatal("two held the turn at once")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled wait did not return")
	}
	release()
}

// TestTurnChangingHandsIsWaitedFor: a queue of writers taking turns is
// waited through, however long, for each holder stamps the turn as it
// takes it; only one holder keeping it past the wait is given up on.
// (The hand-overs are simulated by restamping, as a next holder would,
// so that which waiter flock wakes first does not decide the test.)
func TestTurnChangingHandsIsWaitedFor(t *testing.T) {
	dir, remote := t.TempDir(), "/srv/log.git"
	release := takeTurnAt(ctx, dir, remote, time.Minute)
	f, err := os.OpenFile(filepath.Join(dir, turnKey(remote)), os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make(chan func(), 1)
	start := time.Now()
	go func() { got <- takeTurnAt(ctx, dir, remote, 300*time.Millisecond) }()
	for i := range 8 { // 1.6 s of turns, each shorter than the wait
		time.Sleep(200 * time.Millisecond)
		select {
		case <-got:
			t.Fatalf("gave up after %s, while the turn changed hands", time.Since(start))
		default:
		}
		f.WriteAt([]byte(fmt.Sprintf("%20d %20d\n", 1000+i, time.Now().UnixNano())), 0)
	}
	release()
	select {
	case r := <-got:
		// It holds the turn now: no one else can take it.
		other, err := os.OpenFile(filepath.Join(dir, turnKey(remote)), os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			t.Fatal("the waiter went on without the turn")
		}
		r()
	case <-time.After(10 * time.Second):
		t.Fatal("the turn given back was not taken")
	}
}

// TestTurnKey: spellings of one remote share a turn; other remotes do not.
func TestTurnKey(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://alice:TOKEN@git.example.org/coop/log.git", "https://git.example.org/coop/log.git", true},
		{"https://git.example.org/coop/log.git/", "https://git.example.org/coop/log.git", true},
		{"/srv/log.git/", "/srv/log.git", true},
		{"/srv/a/../log.git", "/srv/log.git", true},
		{"ssh://git@git.example.org/coop/log.git", "ssh://git.example.org/coop/log.git", true},
		{"https://git.example.org/coop/log.git", "https://git.example.org/coop/other.git", false},
		{"/srv/log.git", "/srv/other.git", false},
		{"git@git.example.org:coop/log.git", "git@git.example.org:coop/other.git", false},
	} {
		if got := turnKey(tc.a) == turnKey(tc.b); got != tc.same {
			t.Errorf("turnKey(%q) == turnKey(%q): %v, want %v", tc.a, tc.b, got, tc.same)
		}
		if k := turnKey(tc.a); strings.Contains(k, "TOKEN") || filepath.Base(k) != k {
			t.Errorf("turnKey(%q) = %q", tc.a, k)
		}
	}
}
