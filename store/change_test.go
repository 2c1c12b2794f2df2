package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// putEnv commits data as the app's env file with an env event. The store
// does not look inside: sealing is package sealed's job.
func putEnv(t testing.TB, s *Store, domain string, data string) *Written {
	t.Helper()
	out, err := s.Write(context.Background(), alice, time.Now(), AppendOptions{Offline: true}, func(tx *Tx) error {
		a, err := tx.Place(&metav1.Address{App: domain}, "")
		if err != nil {
			return err
		}
		tx.PutEnv(a, []byte(data), &metav1.Event{Body: &metav1.Event_Env{Env: &metav1.EnvChange{Reason: "set", Changed: []string{"A"}}}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChangeCommitsEnvFileWithItsEvent(t *testing.T) {
	s := newLog(t)
	out := putEnv(t, s, "a.example.com", "sops_mac=one\n")
	if len(out.Events) != 1 || out.Events[0].GetEnvDigest() != sealed.Digest([]byte("sops_mac=one\n")) {
		t.Fatalf("events = %v", out.Events)
	}
	putEnv(t, s, "a.example.com", "sops_mac=two\n")
	assertClean(t, s.Root())
	if got := git(t, s.Root(), "show", "HEAD:projects/coop/prod/a.example.com/a.example.com.env"); got != "sops_mac=two" {
		t.Fatalf("committed env = %q", got)
	}
	if files := strings.Fields(git(t, s.Root(), "show", "--name-only", "--format=", "HEAD")); len(files) != 2 {
		t.Fatalf("the commit holds %v, want the record and the env file", files)
	}
	// A deploy records the env in force.
	d := mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	if d.Event.GetEnvDigest() != sealed.Digest([]byte("sops_mac=two\n")) {
		t.Fatalf("deploy env digest = %q", d.Event.GetEnvDigest())
	}
	h, _ := s.Head("a.example.com")
	if h.EnvDigest != d.Event.GetEnvDigest() || h.EnvChangedSinceDeploy {
		t.Fatalf("head env = %q, changed since deploy %v", h.EnvDigest, h.EnvChangedSinceDeploy)
	}
	putEnv(t, s, "a.example.com", "sops_mac=three\n")
	if h, _ := s.Head("a.example.com"); !h.EnvChangedSinceDeploy {
		t.Fatal("head does not see the env changed since the deploy")
	}
	// Every version is found again by its digest.
	old, err := s.EnvAt(context.Background(), projects.Address{Project: "coop", Env: "prod", App: "a.example.com"}, sealed.Digest([]byte("sops_mac=one\n")))
	if err != nil || string(old) != "sops_mac=one\n" {
		t.Fatalf("EnvAt = %q, %v", old, err)
	}
	// Env events cannot be appended alone.
	_, err = s.Append(context.Background(), &metav1.Event{Kind: metav1.Kind_KIND_ENV, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Address: &metav1.Address{App: "a.example.com"}}, alice, time.Now(), AppendOptions{Offline: true})
	if !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("append env: %v", err)
	}
}

// A change killed before its commit leaves nothing: its record goes, the
// env file it had written is restored.
func TestRecoverAfterCrashedChange(t *testing.T) {
	s := newLog(t)
	putEnv(t, s, "a.example.com", "sops_mac=one\n")
	a := projects.Address{Project: "coop", Env: "prod", App: "a.example.com"}
	orphan := newEvent("a.example.com", "prod", time.Now())
	rp := record.Path(orphan)
	data, _ := record.Marshal(orphan)
	if err := s.work.create(rp, data); err != nil {
		t.Fatal(err)
	}
	if err := s.work.put(projects.EnvPath(a), []byte("sops_mac=half-written\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.journal.noteCommit([]string{rp, projects.EnvPath(a)}); err != nil {
		t.Fatal(err)
	}
	files, err := s.EnvFiles()
	if err != nil || len(files) != 1 || string(files[0].Data) != "sops_mac=one\n" {
		t.Fatalf("after the crash: %v, %v", files, err)
	}
	assertClean(t, s.Root())
}

// An env file edited by hand and not committed is not silently replaced.
func TestChangeRefusesUncommittedEnvEdits(t *testing.T) {
	s := newLog(t)
	putEnv(t, s, "a.example.com", "sops_mac=one\n")
	a := projects.Address{Project: "coop", Env: "prod", App: "a.example.com"}
	s.work.put(projects.EnvPath(a), []byte("sops_mac=by-hand\n"), 0o644)
	_, err := s.Write(context.Background(), alice, time.Now(), AppendOptions{Offline: true}, func(tx *Tx) error {
		_, err := tx.Env(a)
		return err
	})
	if !errors.Is(err, ErrUncommitted) || !strings.Contains(err.Error(), "not committed") {
		t.Fatalf("a change over a hand edit: %v", err)
	}
}
