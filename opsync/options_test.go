package opsync

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// NoLog runs abra and records nothing, whatever abra does.
func TestNoLogRecordsNothing(t *testing.T) {
	for _, code := range []string{"", "3"} {
		t.Run("exit "+code, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			w.envFile(s1, domain, "1.0.0")
			w.order("exit", code)
			before := w.tip(w.log.Root())
			res, err := w.run(Options{NoLog: true}, "app", "upgrade", domain, "2.0.0")
			if err != nil || res == nil {
				t.Fatalf("Run = %v, %v", res, err)
			}
			if want := map[string]int{"": 0, "3": 3}[code]; res.Code != want || len(res.Recorded) != 0 {
				t.Fatalf("result %+v, want code %d and nothing recorded", res, want)
			}
			if !w.ran() {
				t.Fatal("abra did not run")
			}
			if w.tip(w.log.Root()) != before || w.tip(w.remote) != before {
				t.Fatal("NoLog committed")
			}
			if _, err := w.log.Head(domain); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("head: %v, want no events", err)
			}
		})
	}
}

// NoSync records in this clone only: no pull before (another operator's
// news stays out), no push after (the remote stays as it was), and a remote
// that cannot be reached does not matter; `meta sync` shares it later.
func TestNoSyncRecordsLocallyWithoutPullingOrPushing(t *testing.T) {
	w := newWorld(t, nil)
	w.envFile(s1, domain, "1.0.0")
	bobs := join(t, w.remote, "bob")
	if _, err := bobs.Append(ctx, &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: succeeded, Version: "1.0.0", Address: &metav1.Address{App: "bob.example.com"}}, bob, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	remoteTip, mine := w.tip(w.remote), w.tip(w.log.Root())

	res, err := w.run(Options{NoSync: true}, "app", "deploy", domain)
	if err != nil || res.Code != 0 || len(res.Recorded) != 1 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if h := w.head(domain); h.State != "deployed" || h.Version != "1.0.0" || h.Env != s1 {
		t.Fatalf("head %+v", h)
	}
	if w.tip(w.remote) != remoteTip {
		t.Fatal("NoSync pushed")
	}
	if _, err := w.log.Head("bob.example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("NoSync pulled Bob's event: %v", err)
	}
	if parent := git(t, w.log.Root(), "rev-parse", "main^"); parent != mine {
		t.Fatalf("the event's commit is on %s, want this clone's old tip %s", parent, mine)
	}

	// Without the remote at all.
	gone := w.remote + ".gone"
	if err := os.Rename(w.remote, gone); err != nil {
		t.Fatal(err)
	}
	res, err = w.run(Options{NoSync: true}, "app", "upgrade", domain, "1.1.0")
	if err != nil || res.Code != 0 || len(res.Recorded) != 1 {
		t.Fatalf("Run without the remote = %+v, %v", res, err)
	}
	if err := os.Rename(gone, w.remote); err != nil {
		t.Fatal(err)
	}
	if _, err := w.log.Sync(ctx, store.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bobs.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := bobs.Head(domain); err != nil || h.Version != "1.1.0" {
		t.Fatalf("after meta sync, Bob sees %+v, %v", h, err)
	}
}

// Without NoSync, a log that cannot be pulled stops a state-changing
// command before abra runs; a read-only one runs with a warning.
func TestUnreachableRemoteStopsStateChangingCommandsOnly(t *testing.T) {
	w := newWorld(t, nil)
	w.envFile(s1, domain, "1.0.0")
	if err := os.Rename(w.remote, w.remote+".gone"); err != nil {
		t.Fatal(err)
	}
	res, err := w.run(Options{}, "app", "deploy", domain)
	if !errors.Is(err, ErrSyncBefore) || res != nil {
		t.Fatalf("Run = %+v, %v; want ErrSyncBefore and no result", res, err)
	}
	if w.ran() {
		t.Fatal("abra ran")
	}
	res, err = w.run(Options{ForceSync: true}, "app", "ps", domain)
	if err != nil || res.Code != 0 || !w.ran() {
		t.Fatalf("read-only Run = %+v, %v", res, err)
	}
	if warned := strings.Join(w.warned(), "\n"); !strings.Contains(warned, "sync failed: remote unreachable") {
		t.Fatalf("no warning that the log is not synced: %q", warned)
	}
}

// Another operator's lease refuses a state-changing command before abra
// runs; Force goes ahead and the event records the lease it broke. The
// operator's own lease, an expired lease and a read-only command are not
// refused.
func TestLeaseRefusesBeforeAbraRuns(t *testing.T) {
	tests := []struct {
		name    string
		holder  *metav1.Actor
		ttl     time.Duration // the lease's; an hour when 0
		force   bool
		args    []string
		refused bool
		broke   bool
	}{
		{name: "another operator's lease", holder: bob, args: []string{"app", "deploy", domain}, refused: true},
		{name: "another operator's lease on a secret insert", holder: bob, args: []string{"app", "secret", "insert", domain, "db_password", "v9", "x"}, refused: true},
		{name: "forced", holder: bob, force: true, args: []string{"app", "deploy", domain}, broke: true},
		{name: "her own lease", holder: alice, args: []string{"app", "deploy", domain}},
		{name: "an expired lease", holder: bob, ttl: store.MinLease, args: []string{"app", "deploy", domain}},
		{name: "a read-only command", holder: bob, args: []string{"app", "ps", domain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			w.envFile(s1, domain, "1.0.0")
			w.mustRun(0, "app", "deploy", domain)
			w.ran()
			holder := join(t, w.remote, "holder")
			// A real clock, and a lease that ends: a clock set ahead would
			// date every later event of this process ahead too, since
			// record ids never go back in time.
			ttl := time.Hour
			if tt.ttl != 0 {
				ttl = tt.ttl
			}
			lock, err := holder.Lock(ctx, domain, tt.holder, time.Now(), ttl, "migrating the database", store.AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.ttl != 0 {
				time.Sleep(time.Until(lock.Event.GetLock().GetExpires().AsTime()) + 50*time.Millisecond)
			}
			before := w.tip(w.remote)
			res, err := w.run(Options{Force: tt.force}, tt.args...)
			if tt.refused {
				var held *store.LockedError
				if !errors.Is(err, store.ErrLocked) || !errors.As(err, &held) || res != nil {
					t.Fatalf("Run = %+v, %v; want ErrLocked and no result", res, err)
				}
				if held.Lock.Holder != "Bob" || !strings.Contains(err.Error(), "migrating the database") {
					t.Fatalf("the refusal does not say who and why: %v", err)
				}
				if w.ran() {
					t.Fatal("abra ran despite the lease")
				}
				if w.tip(w.log.Root()) != before || w.tip(w.remote) != before {
					t.Fatal("a refused command committed")
				}
				return
			}
			if err != nil || res.Code != 0 || !w.ran() {
				t.Fatalf("Run = %+v, %v; want code 0 with abra run", res, err)
			}
			if len(tt.args) > 1 && tt.args[1] == "ps" {
				if len(res.Recorded) != 0 {
					t.Fatalf("recorded %v", res.Recorded)
				}
				return
			}
			if len(res.Recorded) != 1 {
				t.Fatalf("recorded %d events", len(res.Recorded))
			}
			want := ""
			if tt.broke {
				want = lock.Event.GetId()
			}
			if got := res.Recorded[0].GetBrokeLock(); got != want {
				t.Fatalf("broke_lock = %q, want %q", got, want)
			}
			if stored := w.events()[0]; stored.GetId() != res.Recorded[0].GetId() || stored.GetBrokeLock() != want {
				t.Fatalf("the log holds %v", stored)
			}
		})
	}
}

// Before a command, meta warns when the operator's env file says another
// version than the log (another operator moved the app on, or the env file
// is behind), and only then.
func TestRunWarnsWhenTheEnvFileSaysAnotherVersion(t *testing.T) {
	tests := []struct {
		name   string
		logged []string // the command that sets what the log says
		env    string   // the TYPE= line the operator's env file then has
		args   []string
		warns  string
	}{
		{name: "read-only command", logged: []string{"app", "deploy", domain}, env: recipe + ":0.9.0",
			args: []string{"app", "ps", domain}, warns: "the log says app.example.com runs 1.0.0 (deploy by Alice, "},
		{name: "state-changing command", logged: []string{"app", "deploy", domain}, env: recipe + ":0.9.0",
			args: []string{"app", "undeploy", domain}, warns: "/servers/s1.example.com/app.example.com.env says 0.9.0; another operator may have moved it on: check `meta head app.example.com` before you undeploy"},
		{name: "chaos deploy in the log", logged: []string{"app", "deploy", "--chaos", domain}, env: recipe + ":1.0.0",
			args: []string{"app", "ps", domain}, warns: "runs eb96de94+U (deploy by Alice"},
		{name: "same version", logged: []string{"app", "deploy", domain}, env: recipe + ":1.0.0",
			args: []string{"app", "ps", domain}},
		{name: "no version in the env file", logged: []string{"app", "deploy", domain}, env: recipe,
			args: []string{"app", "ps", domain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			p := w.envFile(s1, domain, "1.0.0")
			w.order("chaos", "eb96de94+U")
			w.mustRun(0, tt.logged...)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(data), "\n")
			lines[0] = "TYPE=" + tt.env
			write(t, p, strings.Join(lines, "\n"), 0o644)

			res, err := w.run(Options{}, tt.args...)
			if err != nil || res.Code != 0 {
				t.Fatalf("Run = %+v, %v", res, err)
			}
			warned := strings.Join(w.warned(), "\n")
			if tt.warns == "" && warned != "" || !strings.Contains(warned, tt.warns) {
				t.Fatalf("warnings %q, want %q", warned, tt.warns)
			}
		})
	}
}

// FindAbra runs the abra given, else the one named like argv0 on PATH, and
// says how to fix it when there is none.
func TestFindAbra(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "abra")
	write(t, exe, "#!/bin/sh\n", 0o755)
	t.Setenv("PATH", dir)
	tests := []struct {
		name, path, argv0, want, fails string
	}{
		{name: "on PATH", argv0: "abra", want: exe},
		{name: "--abra wins", path: exe, argv0: "nowhere", want: exe},
		{name: "a path as argv0", argv0: exe, want: exe},
		{name: "--abra missing", path: filepath.Join(dir, "gone", "abra"), argv0: "abra", fails: "abra: stat "},
		{name: "not on PATH", argv0: "abra2", fails: "abra2 is not on PATH; install abra or pass --abra PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindAbra(tt.path, tt.argv0)
			if tt.fails != "" {
				if err == nil || !strings.Contains(err.Error(), tt.fails) {
					t.Fatalf("FindAbra = %q, %v; want an error saying %q", got, err, tt.fails)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FindAbra = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
