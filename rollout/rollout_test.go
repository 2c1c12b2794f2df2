package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/opsync"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

var (
	ctx    = context.Background()
	alice  = &metav1.Actor{Name: "Alice", Email: "alice@example.com"}
	bob    = &metav1.Actor{Name: "Bob", Email: "bob@example.com"}
	stable = projects.ChannelRef{Recipe: "nextcloud", Channel: "stable"}
)

const (
	oldVersion = "5.0.0+29.0.3"
	newVersion = "5.1.0+29.0.4"
)

// standIn behaves like abra where the rollout depends on it: `abra app
// upgrade|rollback --no-input DOMAIN VERSION` writes VERSION into the
// app's env file's TYPE= line. It logs each command line to $CTL/argv
// and counts them; the one whose number $CTL/failat holds fails (exit 1)
// without changing anything.
const standIn = `#!/usr/bin/env bash
set -u
CTL='%s'
ABRA_DIR='%s'
printf '%%s\n' "$*" >> "$CTL/argv"
pos=()
for a in "$@"; do case $a in -*) ;; *) pos+=("$a") ;; esac; done
n=$(( $(cat "$CTL/count" 2>/dev/null || echo 0) + 1 ))
echo $n > "$CTL/count"
if [ -f "$CTL/failat" ] && [ "$n" = "$(cat "$CTL/failat")" ]; then echo "abra: upgrade failed" >&2; exit 1; fi
f=$(ls "$ABRA_DIR"/servers/*/"${pos[2]}".env)
r=$(sed -n 's/^TYPE=\([^:]*\).*/\1/p' "$f")
sed -i "s/^TYPE=.*/TYPE=$r:${pos[3]}/" "$f"
echo "abra: ${pos[1]} ${pos[2]} ${pos[3]}"
`

// fleet is an operator's machine with a log of apps following
// nextcloud/stable, their env files and the stand-in abra.
type fleet struct {
	t       *testing.T
	log     *store.Store
	abraDir string
	ctl     string
	abra    string
	sleeps  []time.Duration
	lines   []string
	// during, when set, runs at each pause, as another operator would act
	// meanwhile.
	during func()
}

// The fleet: 4 apps on staging, 8 on prod, all at oldVersion, all
// following nextcloud/stable, which is at newVersion.
var (
	stagingApps = []string{"a1.example.org", "a2.example.org", "a3.example.org", "a4.example.org"}
	prodApps    = []string{"b1.example.org", "b2.example.org", "b3.example.org", "b4.example.org", "b5.example.org", "b6.example.org", "b7.example.org", "b8.example.org"}
)

func newFleet(t *testing.T) *fleet {
	t.Helper()
	base := t.TempDir()
	remote := filepath.Join(base, "log.git")
	run(t, base, "git", "init", "-q", "--bare", "-b", "main", remote)
	s, err := store.Join(ctx, filepath.Join(base, "alice"), store.JoinOptions{URL: remote, InitOptions: store.InitOptions{
		Project: "coop", Env: "prod", Operator: store.Signature{Name: "Admin", Email: "admin@example.com", When: time.Now()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &fleet{t: t, log: s, abraDir: filepath.Join(base, "abra"), ctl: filepath.Join(base, "ctl"), abra: filepath.Join(base, "bin", "abra")}
	for _, d := range []string{f.ctl, filepath.Dir(f.abra)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(f.abra, []byte(fmt.Sprintf(standIn, f.ctl, f.abraDir)), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddReleases(ctx, []store.ReleaseSpec{{Recipe: "nextcloud", Version: oldVersion}, {Recipe: "nextcloud", Version: newVersion}}, false, alice, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for env, domains := range map[string][]string{"staging": stagingApps, "prod": prodApps} {
		for _, d := range domains {
			f.app(env, d)
		}
	}
	f.promote(newVersion)
	return f
}

// app deploys domain on env at oldVersion and has it follow stable.
func (f *fleet) app(env, domain string) {
	f.t.Helper()
	ev := &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: oldVersion, Recipe: "nextcloud", Address: &metav1.Address{Project: "coop", Env: env, App: domain}}
	if _, err := f.log.Append(ctx, ev, alice, time.Now(), store.AppendOptions{}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.log.Follow(ctx, domain, stable, "", alice, time.Now(), store.AppendOptions{}); err != nil {
		f.t.Fatal(err)
	}
	p := filepath.Join(f.abraDir, "servers", env, domain+".env")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("TYPE=nextcloud:"+oldVersion+"\nDOMAIN="+domain+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) promote(version string) {
	f.t.Helper()
	if _, err := f.log.Promote(ctx, store.PromoteSpec{Channel: stable, Version: version}, alice, time.Now(), store.AppendOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) config() Config {
	return Config{
		Store: f.log, Abra: f.abra, Channel: stable,
		Runner: &opsync.Runner{
			Store: f.log, Actor: alice, AbraDir: f.abraDir,
			Stdout: &strings.Builder{}, Stderr: &strings.Builder{},
			Warn: func(string, ...any) {},
		},
		EnvOrder: []string{"staging", "prod"}, WaveSize: 3, Pause: 10 * time.Second,
		Progress: func(line string) { f.lines = append(f.lines, line) },
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.sleeps = append(f.sleeps, d)
			if f.during != nil {
				f.during()
			}
			return ctx.Err()
		},
	}
}

// calls are the domains abra was asked to change, in order.
func (f *fleet) calls() []string {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.ctl, "argv"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		w := strings.Fields(l)
		if len(w) != 5 || w[0] != "app" || w[1] != "upgrade" || w[2] != "--no-input" || w[4] != newVersion {
			f.t.Fatalf("abra was asked %q, not an upgrade to %s", l, newVersion)
		}
		out = append(out, w[3])
	}
	return out
}

// heads are each app's state and version, and the id of its newest event.
func (f *fleet) heads() map[string]string {
	f.t.Helper()
	heads, err := f.log.List()
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, h := range heads {
		evs, err := f.log.Log(h.Domain, 1)
		if err != nil || len(evs) == 0 {
			f.t.Fatalf("log of %s: %v", h.Domain, err)
		}
		out[h.Domain] = h.State + " " + h.Running() + " " + evs[0].GetId()
	}
	return out
}

func results(sum *Summary) map[string]string {
	out := map[string]string{}
	for _, a := range sum.Apps {
		out[a.Domain] = a.Result
	}
	return out
}

// The 7th app's upgrade fails: the rollout stops there, the six before
// are upgraded, the rest untouched and never handed to abra; the resume
// retries the 7th once abra works and finishes, in one batch.
func TestRolloutStopsAtTheFirstFailureAndResumes(t *testing.T) {
	f := newFleet(t)
	if err := os.WriteFile(filepath.Join(f.ctl, "failat"), []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := f.heads()
	sum, err := Run(ctx, f.config())
	if !errors.Is(err, ErrStopped) || sum == nil {
		t.Fatalf("Run = %+v, %v; want it stopped", sum, err)
	}
	// Waves: staging first, in threes, then prod.
	want := []string{"a1.example.org", "a2.example.org", "a3.example.org", "a4.example.org", "b1.example.org", "b2.example.org", "b3.example.org"}
	if got := f.calls(); !slices.Equal(got, want) {
		t.Fatalf("abra was asked to upgrade %v, want %v", got, want)
	}
	if len(sum.Waves) != 3 || sum.Waves[0].Env != "staging" || len(sum.Waves[0].Apps) != 3 || len(sum.Waves[1].Apps) != 1 || sum.Waves[2].Env != "prod" {
		t.Fatalf("waves %+v", sum.Waves)
	}
	// Paused before waves 2 and 3, not before the first.
	if !slices.Equal(f.sleeps, []time.Duration{10 * time.Second, 10 * time.Second}) {
		t.Fatalf("paused %v", f.sleeps)
	}
	if !slices.Contains(f.lines, "wave 3/5 (prod on prod): upgrading b3.example.org to "+newVersion) {
		t.Fatalf("progress:\n%s", strings.Join(f.lines, "\n"))
	}
	if sum.Stopped == nil || sum.Stopped.Domain != "b3.example.org" || !strings.Contains(sum.Stopped.Reason, "abra exited 1") ||
		sum.Stopped.Resume != "meta rollout --resume" || sum.Stopped.Skip != "meta rollout --resume --skip b3.example.org" {
		t.Fatalf("stopped %+v", sum.Stopped)
	}
	if c := sum.Counts; c.Upgraded != 6 || c.Stopped != 1 || c.NotReached != 5 || c.Blocked != 0 {
		t.Fatalf("counts %+v", c)
	}
	after := f.heads()
	for _, d := range prodApps[3:] {
		if after[d] != before[d] {
			t.Errorf("%s was touched: %s, was %s", d, after[d], before[d])
		}
		if results(sum)[d] != NotReached {
			t.Errorf("%s: %s", d, results(sum)[d])
		}
	}
	for _, d := range want[:6] {
		if !strings.HasPrefix(after[d], "deployed "+newVersion+" ") {
			t.Errorf("%s: %s", d, after[d])
		}
	}
	if !strings.HasPrefix(after["b3.example.org"], "deploy-failed "+oldVersion) {
		t.Errorf("b3: %s", after["b3.example.org"])
	}
	// The batch stays open for the fix and the resume.
	b, open, err := f.log.OpenBatch()
	if err != nil || !open || b.ID != sum.BatchID || b.Summary != "rollout nextcloud/stable to "+newVersion {
		t.Fatalf("batch %+v %v %v, summary's %s", b, open, err, sum.BatchID)
	}
	st, err := Pending(f.log)
	if err != nil || st == nil || st.StoppedAt != "coop/prod/b3.example.org" || len(st.Done) != 6 {
		t.Fatalf("state %+v, %v", st, err)
	}

}

// The resume after abra is fixed: the 7th retried, the rest done, the
// batch ended, the state forgotten; every upgrade in the one batch.
func TestResumeRetriesTheStoppedAppAndFinishes(t *testing.T) {
	f := newFleet(t)
	os.WriteFile(filepath.Join(f.ctl, "failat"), []byte("7\n"), 0o644)
	first, err := Run(ctx, f.config())
	if !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(f.ctl, "failat"))
	f.sleeps = nil
	sum, err := Resume(ctx, f.config())
	if err != nil || !sum.Done || !sum.Resumed || sum.Stopped != nil {
		t.Fatalf("Resume = %+v, %v", sum, err)
	}
	calls := f.calls()
	if want := append(append([]string{}, stagingApps...), prodApps...); !slices.Equal(calls[:7], want[:7]) || !slices.Equal(calls[7:], want[6:]) {
		t.Fatalf("abra was asked %v", calls)
	}
	if c := sum.Counts; c.Upgraded != 12 || c.NotReached != 0 || c.Stopped != 0 {
		t.Fatalf("counts %+v", c)
	}
	// The resume's first wave is not paused; its second is.
	if len(f.sleeps) != 1 {
		t.Fatalf("resume paused %v", f.sleeps)
	}
	if _, open, _ := f.log.OpenBatch(); open {
		t.Fatal("the rollout's batch is still open")
	}
	if st, err := Pending(f.log); st != nil || err != nil {
		t.Fatalf("state left: %+v, %v", st, err)
	}
	id, evs, err := f.log.BatchEvents(first.BatchID)
	if err != nil || id != sum.BatchID {
		t.Fatal(id, err)
	}
	upgrades := 0
	for _, ev := range evs {
		if ev.GetKind() == metav1.Kind_KIND_UPGRADE {
			upgrades++
		}
	}
	if upgrades != 13 { // 12, and the failed one
		t.Fatalf("%d upgrades in the batch", upgrades)
	}
	if _, err := Resume(ctx, f.config()); !errors.Is(err, ErrNoRollout) {
		t.Fatalf("resuming a finished rollout: %v", err)
	}
}

// --skip leaves the stopped app as it is and goes on with the rest.
func TestResumeSkipLeavesTheStoppedApp(t *testing.T) {
	f := newFleet(t)
	os.WriteFile(filepath.Join(f.ctl, "failat"), []byte("7\n"), 0o644)
	if _, err := Run(ctx, f.config()); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.Skip = []string{"b3.example.org"}
	sum, err := Resume(ctx, cfg)
	if err != nil || !sum.Done {
		t.Fatalf("Resume --skip = %+v, %v", sum, err)
	}
	calls := f.calls()
	if n := strings.Count(strings.Join(calls, " "), "b3.example.org"); n != 1 || len(calls) != 12 {
		t.Fatalf("abra was asked %v", calls)
	}
	if r := results(sum); r["b3.example.org"] != Skipped || sum.Counts.Upgraded != 11 || sum.Counts.Skipped != 1 {
		t.Fatalf("results %v, counts %+v", r, sum.Counts)
	}
}

func TestResumeRefuses(t *testing.T) {
	f := newFleet(t)
	if _, err := Resume(ctx, f.config()); !errors.Is(err, ErrNoRollout) {
		t.Fatalf("nothing stopped: %v", err)
	}
	os.WriteFile(filepath.Join(f.ctl, "failat"), []byte("2\n"), 0o644)
	if _, err := Run(ctx, f.config()); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.Channel = projects.ChannelRef{Recipe: "nextcloud", Channel: "staging"}
	if _, err := Resume(ctx, cfg); !errors.Is(err, ErrOtherChannel) {
		t.Fatalf("resume naming another channel: %v", err)
	}
	cfg = f.config()
	cfg.Skip = []string{"nobody.example.org"}
	if _, err := Resume(ctx, cfg); err == nil || !strings.Contains(err.Error(), "--skip nobody.example.org") {
		t.Fatalf("skipping an app that does not follow: %v", err)
	}
	n := len(f.calls())
	f.promote(oldVersion)
	_, err := Resume(ctx, f.config())
	if !errors.Is(err, ErrChannelMoved) || !errors.Is(err, store.ErrUnexpected) || !strings.Contains(err.Error(), "meta rollout nextcloud/stable") {
		t.Fatalf("resume after the channel moved: %v", err)
	}
	if len(f.calls()) != n {
		t.Fatal("a refused resume ran abra")
	}
}

// A promotion while the rollout pauses stops it before the next wave.
func TestChannelMovedMeanwhileStops(t *testing.T) {
	f := newFleet(t)
	if _, err := f.log.AddReleases(ctx, []store.ReleaseSpec{{Recipe: "nextcloud", Version: "5.2.0+29.0.5"}}, false, bob, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	f.during = func() {
		f.during = nil
		if _, err := f.log.Promote(ctx, store.PromoteSpec{Channel: stable, Version: "5.2.0+29.0.5"}, bob, time.Now(), store.AppendOptions{}); err != nil {
			t.Error(err)
		}
	}
	sum, err := Run(ctx, f.config())
	if !errors.Is(err, ErrChannelMoved) || sum == nil || sum.Stopped == nil || !strings.Contains(sum.Stopped.Reason, "the channel moved to 5.2.0+29.0.5 meanwhile") {
		t.Fatalf("Run = %+v, %v", sum, err)
	}
	if got := f.calls(); len(got) != 3 {
		t.Fatalf("abra was asked %v, want the first wave only", got)
	}
	// The resume is refused, naming the way out.
	if _, err := Resume(ctx, f.config()); !errors.Is(err, ErrChannelMoved) || !strings.Contains(err.Error(), "start a new rollout") {
		t.Fatalf("resume after the channel moved: %v", err)
	}
}

// Blocked apps are skipped and listed; they do not stop the rollout.
func TestBlockedAppsAreListedNotStopping(t *testing.T) {
	f := newFleet(t)
	if _, err := f.log.Lock(ctx, "b2.example.org", bob, time.Now(), time.Hour, "fixing postgres", store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.Pause = 0
	sum, err := Run(ctx, cfg)
	if err != nil || !sum.Done {
		t.Fatalf("Run = %+v, %v", sum, err)
	}
	if len(f.sleeps) != 0 {
		t.Fatalf("paused %v with no pause", f.sleeps)
	}
	if slices.Contains(f.calls(), "b2.example.org") || len(f.calls()) != 11 {
		t.Fatalf("abra was asked %v", f.calls())
	}
	for _, a := range sum.Apps {
		if a.Domain == "b2.example.org" && (a.Result != Blocked || len(a.Blocked) != 1 || !strings.Contains(a.Blocked[0], "Bob holds a lock")) {
			t.Fatalf("b2: %+v", a)
		}
	}
	// Run again: all up to date or blocked, nothing to do, nothing asked.
	again, err := Run(ctx, cfg)
	if err != nil || !again.Done || again.Counts.UpToDate != 11 || again.Counts.Blocked != 1 || len(f.calls()) != 11 {
		t.Fatalf("again = %+v, %v", again.Counts, err)
	}
}

// A dry run says the waves and commands and touches nothing.
func TestDryRunTouchesNothing(t *testing.T) {
	f := newFleet(t)
	tip := run(t, f.log.Root(), "git", "rev-parse", "HEAD")
	status := run(t, f.log.Root(), "git", "status", "--porcelain")
	cfg := f.config()
	cfg.DryRun = true
	sum, err := Run(ctx, cfg)
	if err != nil || !sum.DryRun || len(sum.Waves) != 5 || sum.Counts.Planned != 12 || sum.BatchID != "" {
		t.Fatalf("dry run = %+v, %v", sum, err)
	}
	for _, a := range sum.Apps {
		if a.Result != "upgrade" || len(a.Command) != 6 || a.Command[0] != "abra" || a.Command[5] != newVersion {
			t.Fatalf("%+v", a)
		}
	}
	if f.calls() != nil || len(f.sleeps) != 0 {
		t.Fatal("a dry run ran abra or paused")
	}
	if got := run(t, f.log.Root(), "git", "rev-parse", "HEAD"); got != tip {
		t.Fatal("a dry run committed")
	}
	if got := run(t, f.log.Root(), "git", "status", "--porcelain"); got != status {
		t.Fatal("a dry run changed the work tree")
	}
	if _, open, _ := f.log.OpenBatch(); open {
		t.Fatal("a dry run opened a batch")
	}
	if st, _ := Pending(f.log); st != nil {
		t.Fatal("a dry run kept a state")
	}
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=git", "GIT_AUTHOR_EMAIL=git@example.com", "GIT_COMMITTER_NAME=git", "GIT_COMMITTER_EMAIL=git@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}
