package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// journal is where a write notes what it is about to do, so that the next
// meta command can finish or undo it when the process died half way:
// .git/meta/pending lists the files of the commit being made, and
// .git/meta/pending-sync the branch move of a sync.
type journal struct{ dir string }

func (j journal) commitNote() string { return filepath.Join(j.dir, "pending") }
func (j journal) syncNote() string   { return filepath.Join(j.dir, "pending-sync") }

func (j journal) write(name string, data []byte) error {
	if err := os.MkdirAll(j.dir, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(afero.NewOsFs(), name, data, 0o644)
}

// noteCommit records the files of a commit about to be made.
func (j journal) noteCommit(paths []string) error {
	if err := j.write(j.commitNote(), []byte(strings.Join(paths, "\n")+"\n")); err != nil {
		return fmt.Errorf("note pending commit: %w", err)
	}
	return nil
}

// noteSync records a branch move a sync is about to make.
func (j journal) noteSync(from, to gitrepo.Hash) error {
	if err := j.write(j.syncNote(), []byte(from.String()+" "+to.String()+"\n")); err != nil {
		return fmt.Errorf("note pending sync: %w", err)
	}
	return nil
}

func (j journal) clearCommit() { os.Remove(j.commitNote()) }
func (j journal) clearSync()   { os.Remove(j.syncNote()) }

// pending says a meta died inside a commit or a sync: two stats when it
// did not.
func (j journal) pending() bool { return exists(j.commitNote()) || exists(j.syncNote()) }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// repairAll finishes whatever a killed meta left half done. The caller
// holds the log's lock.
func (s *Store) repairAll() error {
	if s.journal.pending() {
		// A meta died inside a commit or sync: git locks it held are stale.
		if err := s.repo.BreakStaleLocks(gitrepo.StaleLockGrace); err != nil {
			return fmt.Errorf("repair: %w", err)
		}
	}
	if err := s.repairCommit(); err != nil {
		return err
	}
	return s.repairSync()
}

// repairIfPending lets readers repair a crashed write before reading, so
// they never show an event that was not committed nor miss one that was.
func (s *Store) repairIfPending() error {
	if !s.journal.pending() {
		return nil
	}
	release, err := lock(s.gitDir)
	if err != nil {
		return err
	}
	defer release()
	return s.repairAll()
}

// repairCommit finishes a commit a killed meta left half done. The note
// lists the files it was writing; its records say whether it got as far as
// the commit. If the branch holds them, every file stays (and is put back
// in the index); if not, nothing was reported written, so records are
// removed and other files restored as the branch has them.
func (s *Store) repairCommit() error {
	data, err := os.ReadFile(s.journal.commitNote())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("repair interrupted commit: %w", err)
	}
	var paths []string
	witness := ""
	for _, p := range strings.Fields(string(data)) {
		if _, err := projects.ParseRecordPath(p); err == nil {
			witness = p
		} else if _, err := projects.ParseEnvPath(p); err != nil && p != config.File {
			continue // not ours to act on
		}
		paths = append(paths, p)
	}
	if err := s.work.clearTemps(paths); err != nil {
		return fmt.Errorf("repair interrupted commit: %w", err)
	}
	if witness == "" {
		s.journal.clearCommit()
		return nil
	}
	tip, err := s.repo.Head()
	if err != nil {
		return fmt.Errorf("repair interrupted commit: %w", err)
	}
	committed, err := s.repo.Has(tip, witness)
	if err != nil {
		return fmt.Errorf("repair interrupted commit: %w", err)
	}
	if committed {
		err = s.repo.Stage(paths...)
	} else {
		for _, p := range paths {
			if err = s.restoreFile(tip, p); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("repair interrupted commit of %s: %w", witness, err)
	}
	s.journal.clearCommit()
	return nil
}

// repairSync finishes an integration a killed meta left half done: if the
// branch moved, the work tree and index are brought along again (writing a
// file twice is harmless); if not, nothing happened.
func (s *Store) repairSync() error {
	data, err := os.ReadFile(s.journal.syncNote())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 || !gitrepo.IsHash(fields[0]) || !gitrepo.IsHash(fields[1]) {
		s.journal.clearSync()
		return nil
	}
	from, to := gitrepo.NewHash(fields[0]), gitrepo.NewHash(fields[1])
	tip, err := s.repo.Head()
	if err != nil {
		return err
	}
	if tip == to {
		changes, err := s.repo.Diff(from, to)
		if err != nil {
			return err
		}
		paths := make([]string, len(changes))
		for i, ch := range changes {
			paths[i] = ch.Path
		}
		if err := s.work.clearTemps(paths); err != nil {
			return fmt.Errorf("repair interrupted sync: %w", err)
		}
		if err := s.materialize(changes); err != nil {
			return fmt.Errorf("repair interrupted sync: %w", err)
		}
	}
	s.journal.clearSync()
	return nil
}

// restoreFile puts path back as commit holds it (or removes it when the
// commit does not hold it): the undo of a change that was not committed.
// A record is never restored, only removed: records are never replaced.
func (s *Store) restoreFile(commit gitrepo.Hash, path string) error {
	if _, err := projects.ParseRecordPath(path); err == nil {
		return s.work.remove(path)
	}
	data, err := s.repo.FileAt(commit, path)
	if err != nil {
		return err
	}
	if data == nil {
		return s.work.remove(path)
	}
	return s.work.put(path, data, 0o644)
}
