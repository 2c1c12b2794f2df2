package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// handCommit commits a change of file to the clone with the git CLI, as a
// person would while a meta write is under way, and returns the commit.
func handCommit(t testing.TB, dir, file, data string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", file)
	git(t, dir, "commit", "-q", "-m", "by hand: "+file)
	return git(t, dir, "rev-parse", "HEAD")
}

// meddling signs nothing: on its nth call it has a person commit by hand
// (the branch moves under the write) and then fails, as an ssh-agent that
// went away does.
type meddling struct {
	t     testing.TB
	dir   string
	n     int32
	count atomic.Int32
	made  string
}

func (m *meddling) PublicKey() ssh.PublicKey { return nil }

func (m *meddling) Sign([]byte) ([]byte, error) {
	if m.count.Add(1) == m.n {
		m.made = handCommit(m.t, m.dir, "README.md", "a person's note\n")
	}
	return nil, errors.New("the agent went away")
}

var _ signing.Signer = (*meddling)(nil)

// A write that fails after a person committed by hand (here: the commit
// of its first event could not be signed, so it wrote nothing) takes back
// only what it made itself: the person's commit stays on the branch. It
// used to move the branch back to the tip the write started from, dropping
// the person's commit.
func TestFailedWriteKeepsACommitAPersonMadeMeanwhile(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	m := &meddling{t: t, dir: s.Root(), n: 1}
	s.SetSigner(m)
	err := writeTwo(s)
	if !errors.Is(err, gitrepo.ErrSign) {
		t.Fatalf("write = %v, want ErrSign", err)
	}
	if m.made == "" {
		t.Fatal("the person's commit was not made")
	}
	if tip := git(t, s.Root(), "rev-parse", "HEAD"); tip != m.made {
		t.Fatalf("the branch is at %s, not at the person's commit %s: the failed write dropped it", tip, m.made)
	}
	assertClean(t, s.Root())
}

// A change of meta.yaml whose branch a person moved with a commit of
// meta.yaml by hand between the write's read of it and its commit does
// not write over the person's change: the write is refused
// (ErrConflict) and the person's meta.yaml stands, or both changes are in.
// It used to commit the meta.yaml it planned on the tip it read, undoing
// the person's change in a commit that says nothing of it.
func TestConfigChangeDoesNotUndoAHandCommitMadeMeanwhile(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	cfg, err := os.ReadFile(filepath.Join(s.Root(), config.File))
	if err != nil {
		t.Fatal(err)
	}
	hand := string(cfg) + "sync_cooldown: 5m\n"
	var made string
	_, err = s.Write(ctx, alice, time.Now(), AppendOptions{}, func(tx *Tx) error {
		next, err := tx.Config().WithOperator(config.Operator{Name: "bob", Age: bobAge})
		if err != nil {
			return err
		}
		if err := tx.PutConfig(next); err != nil {
			return err
		}
		// The re-encryption of env files takes a while: a person
		// commits a change of meta.yaml meanwhile.
		made = handCommit(t, s.Root(), config.File, hand)
		return nil
	})
	head := git(t, s.Root(), "show", "HEAD:"+config.File)
	switch {
	case err == nil:
		if !strings.Contains(head, "sync_cooldown: 5m") || !strings.Contains(head, "bob") {
			t.Fatalf("meta.yaml after the write:\n%s\nwant the person's sync_cooldown and bob both", head)
		}
	case errors.Is(err, ErrConflict):
		if tip := git(t, s.Root(), "rev-parse", "HEAD"); tip != made {
			t.Fatalf("refused, but the branch is at %s, not the person's commit %s", tip, made)
		}
	default:
		t.Fatalf("write = %v", err)
	}
	assertClean(t, s.Root())
}

// A write whose commit reached the branch but not git's index (a git
// process, or a dead one's index.lock, kept the index locked past
// indexLockWait) says so, and the next meta command puts the records in
// the index, as it does for a meta killed at that step: `git status`
// stays clean without the operator running `git reset`. The note in the
// journal used to be cleared with the commit made, so nothing did.
func TestIndexNotUpdatedIsRepairedByTheNextCommand(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	lock := filepath.Join(s.Root(), ".git", "index.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := s.Append(ctx, note("a.example.com"), alice, time.Now(), AppendOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(out.Warnings, "\n"), "index") {
		t.Fatalf("warnings = %q, want the index not updated", out.Warnings)
	}
	// The next command, in another process.
	o, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if h, err := o.Head("a.example.com"); err != nil || h.Events != 2 {
		t.Fatalf("head = %+v, %v", h, err)
	}
	os.Remove(lock) // if the repair left it: git status must not trip on it
	assertClean(t, s.Root())
}

// A chain whose finish fails before the branch moves (here a dead git's
// lock on the branch, which meta does not break without a note of its
// own) leaves everything as the branch has it: no record of the chain in
// the work tree, meta.yaml as committed, no note in the journal, the
// integrity state and heads of before; once the lock is gone the same
// write goes through.
func TestChainFinishFailingRestoresTheWorkTreeFromTheBranch(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	before := git(t, s.Root(), "rev-parse", "HEAD")
	cfgBefore := git(t, s.Root(), "show", "HEAD:"+config.File)
	lock := filepath.Join(s.Root(), ".git", "refs", "heads", "main.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	write := func() (*Written, error) {
		return s.Write(ctx, alice, time.Now(), AppendOptions{}, func(tx *Tx) error {
			next, err := tx.Config().WithOperator(config.Operator{Name: "bob", Age: bobAge})
			if err != nil {
				return err
			}
			if err := tx.PutConfig(next); err != nil {
				return err
			}
			for _, d := range []string{"a.example.com", "b.example.com", "a.example.com"} {
				addr, err := tx.Place(&metav1.Address{App: d}, "")
				if err != nil {
					return err
				}
				tx.Add(addr, note(d))
			}
			return nil
		})
	}
	if _, err := write(); !errors.Is(err, gitrepo.ErrStaleLock) {
		t.Fatalf("write with the branch locked = %v, want ErrStaleLock", err)
	}
	if tip := git(t, s.Root(), "rev-parse", "HEAD"); tip != before {
		t.Fatalf("the branch moved to %s", tip)
	}
	os.Remove(lock)
	assertClean(t, s.Root())
	if cfg, _ := os.ReadFile(filepath.Join(s.Root(), config.File)); strings.TrimSpace(string(cfg)) != cfgBefore {
		t.Fatalf("meta.yaml after the failed write:\n%s", cfg)
	}
	if _, err := os.Stat(s.journal.commitNote()); !os.IsNotExist(err) {
		t.Fatalf("the journal still notes the commit: %v", err)
	}
	if h, err := s.Head("a.example.com"); err != nil || h.Events != 1 {
		t.Fatalf("head of a = %+v, %v", h, err)
	}
	if _, err := s.Head("b.example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("head of b = %v, want not found", err)
	}
	if st, err := s.stateAt(gitrepo.NewHash(before)); err != nil || st.Checked != before {
		t.Fatalf("integrity state = %+v, %v", st, err)
	}
	out, err := write()
	if err != nil || len(out.Events) != 3 {
		t.Fatalf("the write again = %+v, %v", out, err)
	}
	assertClean(t, s.Root())
	if h, err := s.Head("a.example.com"); err != nil || h.Events != 3 {
		t.Fatalf("head of a after = %+v, %v", h, err)
	}
}

// A file the operator left in the work tree where an event's record goes
// (untracked: copied from another clone, say) stops the write, and is left
// as it was: restoring the work tree after a failed write removes only what
// the write put there.
func TestFailedWriteLeavesAnUntrackedFileInItsWay(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	now := time.Now()
	id := record.NewID(now)
	p := projects.RecordPath(projects.Address{Project: "coop", Env: "prod", App: "a.example.com"}, id, now)
	writeFile(t, s.Root(), p, []byte("the operator's\n"))
	_, err := s.Append(ctx, note("a.example.com"), alice, now, AppendOptions{ID: id, Offline: true})
	if err == nil {
		t.Fatal("the append wrote over a file in its way")
	}
	data, rerr := os.ReadFile(filepath.Join(s.Root(), filepath.FromSlash(p)))
	if rerr != nil || string(data) != "the operator's\n" {
		t.Fatalf("the file in the way after the failed append (%v): %q, %v", err, data, rerr)
	}
}

// writeTwo is one write of two events of a.example.com, an upgrade and a
// note: two commits, the second made (and signed) after the first.
func writeTwo(s *Store) error {
	_, err := s.Write(ctx, alice, time.Now(), AppendOptions{}, func(tx *Tx) error {
		addr, err := tx.Place(&metav1.Address{App: "a.example.com"}, "")
		if err != nil {
			return err
		}
		tx.Add(addr, upgrade("a.example.com", "1.1.0"))
		tx.Add(addr, note("a.example.com"))
		return nil
	})
	return err
}
