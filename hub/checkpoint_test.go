package hub

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// The hub publishes the derived state for new clones once the log has grown
// CheckpointEvery commits past the last one, and not before.
func TestHubPublishesCheckpoints(t *testing.T) {
	ctx := context.Background()
	remote := filepath.Join(t.TempDir(), "log.git")
	gitOut(t, filepath.Dir(remote), "init", "-q", "--bare", "-b", "main", remote)
	s, err := store.Join(ctx, filepath.Join(t.TempDir(), "hub"), store.JoinOptions{URL: remote, InitOptions: store.InitOptions{Project: "coop", Env: "prod", Operator: store.Signature{Name: "Alice", When: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := New(ctx, Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", CheckpointEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	derived := func() string {
		out, _ := exec.Command("git", "-C", remote, "rev-parse", "--verify", "-q", store.DerivedBranch).Output()
		return strings.TrimSpace(string(out))
	}
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	h.cycle(ctx)
	if d := derived(); d != "" {
		t.Fatalf("a log of 2 commits got a checkpoint %s", d)
	}
	for range 4 {
		appendEv(t, s, metav1.Kind_KIND_NOTE, "a.example.com", "")
	}
	h.cycle(ctx)
	first := derived()
	if first == "" {
		t.Fatal("no checkpoint after 6 commits")
	}
	appendEv(t, s, metav1.Kind_KIND_NOTE, "a.example.com", "")
	h.cycle(ctx)
	if d := derived(); d != first {
		t.Fatalf("a new checkpoint %s one commit after the last", d)
	}
	for range 5 {
		appendEv(t, s, metav1.Kind_KIND_NOTE, "b.example.com", "")
	}
	h.cycle(ctx)
	if d := derived(); d == first || d == "" {
		t.Fatalf("no new checkpoint 6 commits after the last (%s)", d)
	}
	if at, tip := gitOut(t, remote, "show", store.DerivedBranch+":integrity.json"), gitOut(t, remote, "rev-parse", "main"); !strings.Contains(at, tip) {
		t.Fatalf("the checkpoint %s is not at the remote's tip %s", at, tip)
	}
}
