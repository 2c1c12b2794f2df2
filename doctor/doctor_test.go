package doctor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

var alice = &metav1.Actor{Name: "Alice", Email: "alice@example.com"}

func inputs(s *store.Store, err error) Inputs {
	return Inputs{
		Store:    s,
		OpenErr:  err,
		Operator: func() (*metav1.Actor, error) { return alice, nil },
		Helper:   func() (sealed.Helper, error) { return sealed.Helper{}, sealed.ErrNoHelper },
		Identity: func() (sealed.Identity, error) { return sealed.Identity{}, sealed.ErrNoIdentity },
	}
}

func check(t *testing.T, checks []Check, name string) Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", name, checks)
	return Check{}
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Mallory", "GIT_AUTHOR_EMAIL=m@example.com", "GIT_COMMITTER_NAME=Mallory", "GIT_COMMITTER_EMAIL=m@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// Each state a clone can be in shows as a check, with its way out; a
// problem fails the doctor, a warning does not; the doctor changes nothing.
func TestDoctorNamesEachStateAndItsWayOut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.Init(dir, store.InitOptions{Project: "coop", Env: "prod", Operator: store.Signature{Name: "Alice", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1.0.0", Address: &metav1.Address{App: "a.example.com"}}, alice, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	checks := Run(ctx, inputs(s, nil))
	if Failed(checks) {
		t.Fatalf("a healthy log without a remote fails: %+v", checks)
	}
	if c := check(t, checks, "remote"); c.Severity != Warning || !strings.Contains(c.Fix, "remote add origin") {
		t.Errorf("remote = %+v", c)
	}
	if c := check(t, checks, "meta-seal"); c.Severity != Warning {
		t.Errorf("meta-seal = %+v", c)
	}

	// A record edited in place and committed, never pushed: a problem,
	// whose way out is meta repair.
	recs, _ := filepath.Glob(filepath.Join(dir, "projects/coop/prod/a.example.com/*/*.pb"))
	os.WriteFile(recs[0], []byte("tampered"), 0o644)
	git(t, dir, "commit", "-qam", "tamper")
	before, _ := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	checks = Run(ctx, inputs(s, nil))
	if c := check(t, checks, "quarantine"); c.Severity != Problem || c.Fix != "meta repair" || !Failed(checks) {
		t.Errorf("quarantine = %+v", c)
	}
	after, _ := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if string(before) != string(after) {
		t.Error("the doctor moved the branch")
	}

	// NATS that does not answer.
	in := inputs(s, nil)
	in.NATS = notify.Options{URL: "nats://127.0.0.1:1", ConnectTimeout: time.Second}
	if c := check(t, Run(ctx, in), "nats"); c.Severity != Problem || !strings.Contains(c.Detail, "127.0.0.1:1") {
		t.Errorf("nats = %+v", c)
	}

	// No log at all.
	_, openErr := store.Open(t.TempDir())
	checks = Run(ctx, inputs(nil, openErr))
	if c := check(t, checks, "log"); c.Severity != Problem || !strings.Contains(c.Fix, "meta init") || !Failed(checks) {
		t.Errorf("log = %+v", c)
	}
	if !errors.Is(openErr, store.ErrNotLog) {
		t.Fatalf("open: %v", openErr)
	}
}

// A clone whose history no longer holds the commit it pinned its operators
// at is a problem, named with its way out; one that holds it is fine.
func TestDoctorNamesALostPin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.Init(dir, store.InitOptions{Project: "coop", Env: "prod", Operator: store.Signature{Name: "Alice", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c := check(t, Run(ctx, inputs(s, nil)), "trust"); c.Severity != OK {
		t.Fatalf("trust before any pin: %+v", c)
	}
	if _, err := s.ResetPin(ctx); err != nil {
		t.Fatal(err)
	}
	if c := check(t, Run(ctx, inputs(s, nil)), "trust"); c.Severity != OK || !strings.Contains(c.Detail, "signatures optional; operators pinned at") {
		t.Fatalf("trust with a pin that holds: %+v", c)
	}
	// A pin at a commit history lost, of an operator with a key.
	pin := `{"commit": "0123456789abcdef0123456789abcdef01234567", "operators": [{"name": "alice", "ssh": "ssh-ed25519 AAAA", "fingerprint": "SHA256:x"}], "required": true}`
	if err := os.WriteFile(filepath.Join(dir, ".git", "meta", "trust.json"), []byte(pin), 0o644); err != nil {
		t.Fatal(err)
	}
	checks := Run(ctx, inputs(s, nil))
	if c := check(t, checks, "trust"); c.Severity != Problem || !strings.Contains(c.Detail, "history no longer holds the commit this clone pinned") || !strings.Contains(c.Fix, "meta trust reset") || !Failed(checks) {
		t.Fatalf("trust with a lost pin: %+v", c)
	}
}
