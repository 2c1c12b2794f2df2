package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// Errors of sharing the log through a remote.
var (
	// ErrSync: the remote could not be fetched from or pushed to.
	ErrSync = errors.New("sync failed")
	// ErrRewritten: the remote lost commits this clone saw there, or
	// changed or deleted records: someone rewrote its history.
	ErrRewritten = errors.New("remote history rewritten")
	// ErrConflict: a remote change collides with files the operator
	// changed by hand.
	ErrConflict = gitrepo.ErrConflict
	// ErrUnexpected: the app's head is not what the operator expected.
	ErrUnexpected = errors.New("head is not as expected")
)

// DefaultCooldown is how long reads trust the last fetch.
const DefaultCooldown = 60 * time.Second

// maxPushes bounds how often an append retries its push when others keep
// pushing first.
const maxPushes = 10

// syncState is what a clone remembers of its remote, in .git/meta/sync.json.
type syncState struct {
	// LastAttempt is when a fetch was last tried, for the read cooldown.
	LastAttempt time.Time `json:"last_attempt"`
	// LastSync is when a fetch and integration last succeeded.
	LastSync time.Time `json:"last_sync"`
}

func (s *Store) statePath() string { return filepath.Join(s.gitDir, "meta", "sync.json") }

func (s *Store) loadState() syncState {
	var st syncState
	if data, err := os.ReadFile(s.statePath()); err == nil {
		json.Unmarshal(data, &st)
	}
	return st
}

func (s *Store) saveState(st syncState) {
	data, _ := json.Marshal(st)
	tmp := s.statePath() + ".tmp"
	if os.WriteFile(tmp, data, 0o644) == nil {
		os.Rename(tmp, s.statePath())
	}
}

// Source names the log for followers: its remote's URL, else its
// directory as a file URL.
func (s *Store) Source(ctx context.Context) string {
	if url := s.repo.RemoteURL(ctx); url != "" {
		return url
	}
	return "file://" + s.root
}

// HasRemote says whether the log is shared through a remote.
func (s *Store) HasRemote(ctx context.Context) bool { return s.repo.RemoteURL(ctx) != "" }

// pull fetches the remote and integrates what it has that this clone does
// not. The caller holds the lock.
func (s *Store) pull(ctx context.Context) error {
	st := s.loadState()
	st.LastAttempt = time.Now()
	s.saveState(st)
	seen, err := s.repo.RemoteTip()
	if err != nil {
		return err
	}
	remote, err := s.repo.Fetch(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSync, err)
	}
	if seen == remote {
		// Nothing new, nothing lost.
	} else if ok, err := s.repo.IsAncestor(ctx, seen, remote); err != nil {
		return err
	} else if !ok {
		s.repo.SetRemoteTip(ctx, seen) // keep refusing until someone repairs the remote
		return fmt.Errorf("%w: the remote's branch no longer contains %s, which this clone fetched before; events may have been removed. Restore the remote's history (push this clone's with `git push --force` if it is complete), then sync", ErrRewritten, seen.String()[:12])
	}
	if err := s.integrate(ctx, remote); err != nil {
		return err
	}
	st.LastSync = time.Now()
	s.saveState(st)
	return nil
}

// integrate makes the local branch hold everything remote holds, keeping
// local commits the remote lacks on top of it (replayed, so history stays
// linear), and brings the work tree and index along.
func (s *Store) integrate(ctx context.Context, remote plumbing.Hash) error {
	local, err := s.repo.Head()
	if err != nil {
		return err
	}
	if remote.IsZero() || remote == local {
		return nil
	}
	next := remote // local is empty, or behind: fast-forward
	if !local.IsZero() {
		// One merge-base answers everything: it walks back only to the
		// common commit, where "is remote an ancestor of local?" would walk
		// all of history to say no.
		base, err := s.repo.MergeBase(ctx, local, remote)
		if err != nil {
			return err
		}
		switch base {
		case remote:
			return nil // the remote has nothing this clone lacks
		case local:
		case plumbing.ZeroHash:
			return fmt.Errorf("%w: the remote's history shares no commit with this clone's", ErrRewritten)
		default:
			mine, err := s.repo.Commits(ctx, remote, local)
			if err != nil {
				return err
			}
			if next, err = s.repo.Replay(ctx, remote, mine); err != nil {
				return err
			}
		}
	}
	changes, err := s.repo.Diff(local, next)
	if err != nil {
		return err
	}
	if err := s.preflight(changes); err != nil {
		return err
	}
	// The note lets the next command finish bringing the work tree along
	// if this one dies after moving the branch.
	if err := s.setPendingSync(local, next); err != nil {
		return err
	}
	sig := gitrepo.Signature{Name: "meta", When: time.Now()}
	if err := s.repo.MoveBranch(local, next, sig, "meta: sync with "+gitrepo.Remote); err != nil {
		s.clearPendingSync()
		return err
	}
	if err := s.materialize(changes); err != nil {
		return err
	}
	s.clearPendingSync()
	return nil
}

// isEnvPath says p is an app's sealed env file: the one kind of file under
// projects/ that changes in place.
func isEnvPath(p string) bool {
	_, err := projects.ParseEnvPath(p)
	return err == nil
}

// preflight refuses changes that would lose something: a remote that
// changes or deletes records, and files the operator changed by hand that
// the remote changes too.
func (s *Store) preflight(changes []gitrepo.FileChange) error {
	var rewritten, collide []string
	for _, ch := range changes {
		if strings.HasPrefix(ch.Path, projects.Root+"/") && !ch.From.IsZero() && !isEnvPath(ch.Path) {
			rewritten = append(rewritten, ch.Path)
			continue
		}
		data, err := s.files.Read(ch.Path)
		have := plumbing.ZeroHash
		if err == nil {
			have = plumbing.ComputeHash(plumbing.BlobObject, data)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if have != ch.From && have != ch.To {
			collide = append(collide, ch.Path)
		}
	}
	if len(rewritten) > 0 {
		return fmt.Errorf("%w: the remote changes or deletes records: %s", ErrRewritten, strings.Join(rewritten, ", "))
	}
	if len(collide) > 0 {
		return fmt.Errorf("%w: the remote changes %s, which you changed here and did not commit; commit or move your changes, then sync", ErrConflict, strings.Join(collide, ", "))
	}
	return nil
}

// materialize writes changes into the work tree and the index.
func (s *Store) materialize(changes []gitrepo.FileChange) error {
	var staged, deleted []string
	for _, ch := range changes {
		if ch.To.IsZero() {
			if err := s.files.Delete(ch.Path); err != nil {
				return err
			}
			deleted = append(deleted, ch.Path)
			continue
		}
		if ch.Mode == filemode.Symlink || ch.Mode == filemode.Submodule {
			continue // meta's logs hold neither; git checkout restores them
		}
		data, err := s.repo.ReadBlob(ch.To)
		if err != nil {
			return err
		}
		perm := os.FileMode(0o644)
		if ch.Mode == filemode.Executable {
			perm = 0o755
		}
		if err := s.files.Put(ch.Path, data, perm); err != nil {
			return err
		}
		staged = append(staged, ch.Path)
	}
	if err := s.repo.Stage(staged...); err != nil {
		return err
	}
	return s.repo.Unstage(deleted...)
}

func (s *Store) pendingSyncPath() string { return filepath.Join(s.gitDir, "meta", "pending-sync") }

func (s *Store) setPendingSync(from, to plumbing.Hash) error {
	return writeFileSynced(s.pendingSyncPath(), []byte(from.String()+" "+to.String()+"\n"))
}

func (s *Store) clearPendingSync() { os.Remove(s.pendingSyncPath()) }

// repairSync finishes an integration a killed meta left half done: if the
// branch moved, the work tree and index are brought along again (writing a
// file twice is harmless); if not, nothing happened.
func (s *Store) repairSync() error {
	data, err := os.ReadFile(s.pendingSyncPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 || !plumbing.IsHash(fields[0]) && fields[0] != plumbing.ZeroHash.String() || !plumbing.IsHash(fields[1]) {
		s.clearPendingSync()
		return nil
	}
	from, to := plumbing.NewHash(fields[0]), plumbing.NewHash(fields[1])
	tip, err := s.repo.Head()
	if err != nil {
		return err
	}
	if tip == to {
		changes, err := s.repo.Diff(from, to)
		if err != nil {
			return err
		}
		if err := s.materialize(changes); err != nil {
			return fmt.Errorf("repair interrupted sync: %w", err)
		}
	}
	s.clearPendingSync()
	return nil
}

// push sends local commits to the remote; when others pushed first it
// integrates theirs and tries again, a bounded number of times with jitter
// so racing writers spread out.
func (s *Store) push(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := s.pushOnce(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, gitrepo.ErrRejected) || attempt == maxPushes {
			return fmt.Errorf("%w: %w", ErrSync, err)
		}
		time.Sleep(backoff(attempt))
		if err := s.pull(ctx); err != nil {
			return err
		}
	}
}

// pushOnce pushes once, remembering a success as the last sync.
func (s *Store) pushOnce(ctx context.Context) error {
	if err := s.repo.Push(ctx); err != nil {
		return err
	}
	st := s.loadState()
	st.LastSync = time.Now()
	s.saveState(st)
	return nil
}

// backoff is how long to wait before push attempt n+1: exponential, capped,
// with full jitter, so writers that collided spread out instead of
// colliding again.
func backoff(attempt int) time.Duration {
	ceiling := 25 * time.Millisecond << min(attempt, 6)
	return time.Duration(rand.Int64N(int64(ceiling))) + 5*time.Millisecond
}

// Sync pushes this clone's unpushed events and integrates the remote's.
func (s *Store) Sync(ctx context.Context) error {
	release, err := lock(s.gitDir)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	defer release()
	if err := s.repairAll(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if !s.HasRemote(ctx) {
		return fmt.Errorf("sync: %w: this log has no remote (meta init --remote, or git remote add origin URL)", ErrSync)
	}
	if err := s.pull(ctx); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := s.push(ctx); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// Pull brings the log up to date with the remote now, whatever the
// cooldown. Unlike Refresh, a remote that cannot be reached is an error:
// it is what runs before a command that changes a server.
func (s *Store) Pull(ctx context.Context) error {
	if !s.HasRemote(ctx) {
		return nil
	}
	release, err := lock(s.gitDir)
	if err != nil {
		return err
	}
	defer release()
	if err := s.repairAll(); err != nil {
		return err
	}
	return s.pull(ctx)
}

// Refresh is what a read does before answering: fetch and integrate, at
// most once per cooldown unless forced. When the remote cannot be reached
// it returns a warning saying how old the local view is, not an error.
func (s *Store) Refresh(ctx context.Context, force bool) (warning string, err error) {
	if !s.HasRemote(ctx) {
		return "", nil
	}
	st := s.loadState()
	if !force && time.Since(st.LastAttempt) < s.cooldown() {
		if st.LastSync.Before(st.LastAttempt) {
			// The last try failed: do not try again yet, but do not go quiet.
			return fmt.Sprintf("the last fetch from the remote failed; showing the log as %s", staleness(st.LastSync)), nil
		}
		return "", nil
	}
	release, err := lock(s.gitDir)
	if err != nil {
		return "", err
	}
	defer release()
	if err := s.repairAll(); err != nil {
		return "", err
	}
	if err := s.pull(ctx); err != nil {
		// A read still answers from this clone, saying loudly why it may be
		// behind; appends and sync refuse.
		if errors.Is(err, ErrSync) || errors.Is(err, ErrConflict) || errors.Is(err, ErrRewritten) {
			return fmt.Sprintf("%v; showing the log as %s", err, staleness(st.LastSync)), nil
		}
		return "", err
	}
	return "", nil
}

func (s *Store) cooldown() time.Duration {
	if s.cfg.SyncCooldown != "" {
		if d, err := time.ParseDuration(s.cfg.SyncCooldown); err == nil {
			return d
		}
	}
	return DefaultCooldown
}

func staleness(last time.Time) string {
	if last.IsZero() {
		return "never synced"
	}
	d := time.Since(last)
	if d < time.Minute {
		return "last synced less than a minute ago"
	}
	// "3h12m", not "3h12m0s".
	return "last synced " + strings.TrimSuffix(d.Round(time.Minute).String(), "0s") + " ago"
}

// repairAll finishes whatever a killed meta left half done. The caller
// holds the lock.
func (s *Store) repairAll() error {
	if fileExists(s.pendingPath()) || fileExists(s.pendingSyncPath()) {
		// A meta died inside an append or sync: git locks it held are stale.
		if err := s.repo.BreakStaleLocks(gitrepo.StaleLockGrace); err != nil {
			return fmt.Errorf("repair: %w", err)
		}
	}
	if err := s.repair(); err != nil {
		return err
	}
	return s.repairSync()
}

// writeFileSynced writes a small file whole and durable.
func writeFileSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
