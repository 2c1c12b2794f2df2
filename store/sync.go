package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
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
	// changed by hand, or with a change of the same file made here.
	ErrConflict = gitrepo.ErrConflict
	// ErrUnexpected: the app's head is not what the operator expected.
	ErrUnexpected = errors.New("head is not as expected")
	// ErrBadRemote: the remote holds what no meta could go on from, so
	// this clone does not take it in.
	ErrBadRemote = errors.New("the remote's log is broken")
)

// maxPushes bounds how often a write retries its push when others keep
// pushing first.
const maxPushes = 10

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
	s.state.attempted(time.Now())
	seen, err := s.repo.RemoteTip()
	if err != nil {
		return err
	}
	remote, err := s.repo.Fetch(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSync, err)
	}
	if seen != remote {
		if ok, err := s.repo.IsAncestor(ctx, seen, remote); err != nil {
			return err
		} else if !ok {
			s.repo.SetRemoteTip(ctx, seen) // keep refusing until someone repairs the remote
			return fmt.Errorf("%w: the remote's branch no longer contains %s, which this clone fetched before; events may have been removed. Restore the remote's history (push this clone's with `git push --force` if it is complete), then sync", ErrRewritten, seen.String()[:12])
		}
	}
	if err := s.integrate(ctx, remote); err != nil {
		return err
	}
	s.state.synced(time.Now())
	return nil
}

// integrate makes the local branch hold everything remote holds, keeping
// local commits the remote lacks on top of it (replayed, so history stays
// linear), and brings the work tree, the index and meta.yaml along.
func (s *Store) integrate(ctx context.Context, remote gitrepo.Hash) error {
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
		case gitrepo.ZeroHash:
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
	if err := s.checkIncomingConfig(next, changes); err != nil {
		return err
	}
	// The note lets the next command finish bringing the work tree along
	// if this one dies after moving the branch.
	if err := s.journal.noteSync(local, next); err != nil {
		return err
	}
	sig := gitrepo.Signature{Name: "meta", When: time.Now()}
	if err := s.repo.MoveBranch(local, next, sig, "meta: sync with "+gitrepo.Remote); err != nil {
		s.journal.clearSync()
		return err
	}
	if err := s.materialize(changes); err != nil {
		return err
	}
	s.journal.clearSync()
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
		data, err := s.work.read(ch.Path)
		have := gitrepo.ZeroHash
		if err == nil {
			have = gitrepo.BlobID(data)
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

// checkIncomingConfig refuses to bring in a meta.yaml no meta could go on
// from (not YAML, against its schema, or deleted): moving the branch to it
// would stop every command of this clone until someone mended git by hand.
// The remote stays as it is, this clone answers from what it has, and the
// next sync after the remote is mended brings everything in.
func (s *Store) checkIncomingConfig(next gitrepo.Hash, changes []gitrepo.FileChange) error {
	for _, ch := range changes {
		if ch.Path != config.File {
			continue
		}
		data, err := s.repo.FileAt(next, config.File)
		if err != nil {
			return err
		}
		if data == nil {
			return fmt.Errorf("%w: the remote's last commits delete %s; nothing was brought in: restore it on the remote, then sync", ErrBadRemote, config.File)
		}
		if _, err := config.Parse(data); err != nil {
			return fmt.Errorf("%w: the remote's %s is broken (%v); nothing was brought in: mend it on the remote, then sync", ErrBadRemote, config.File, err)
		}
	}
	return nil
}

// materialize writes changes into the work tree and the index, and reads
// meta.yaml again when they change it.
func (s *Store) materialize(changes []gitrepo.FileChange) error {
	var staged, deleted []string
	cfgChanged := false
	for _, ch := range changes {
		cfgChanged = cfgChanged || ch.Path == config.File
		if ch.To.IsZero() {
			if err := s.work.remove(ch.Path); err != nil {
				return err
			}
			deleted = append(deleted, ch.Path)
			continue
		}
		if !ch.IsFile() {
			continue // meta's logs hold no symlinks or submodules; git checkout restores them
		}
		data, err := s.repo.ReadBlob(ch.To)
		if err != nil {
			return err
		}
		perm := os.FileMode(0o644)
		if ch.IsExecutable() {
			perm = 0o755
		}
		if err := s.work.put(ch.Path, data, perm); err != nil {
			return err
		}
		staged = append(staged, ch.Path)
	}
	if err := s.repo.Stage(staged...); err != nil {
		return err
	}
	if err := s.repo.Unstage(deleted...); err != nil {
		return err
	}
	if cfgChanged {
		_, err := s.reloadConfig()
		return err
	}
	return nil
}

// undo takes back the commits made on top of prev up to tip, which the
// remote refused: the branch, the index and the work tree return to prev.
func (s *Store) undo(tip, prev gitrepo.Hash) error {
	changes, err := s.repo.Diff(tip, prev)
	if err != nil {
		return err
	}
	// Noted like a sync: a killed undo is finished the same way.
	if err := s.journal.noteSync(tip, prev); err != nil {
		return err
	}
	sig := gitrepo.Signature{Name: "meta", When: time.Now()}
	if err := s.repo.MoveBranch(tip, prev, sig, "meta: take back a change the remote refused"); err != nil {
		s.journal.clearSync()
		return err
	}
	if err := s.materialize(changes); err != nil {
		return err
	}
	s.journal.clearSync()
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
	s.state.synced(time.Now())
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
	st := s.state.load()
	if !force && time.Since(st.LastAttempt) < s.cfg.Cooldown() {
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
		if errors.Is(err, ErrSync) || errors.Is(err, ErrConflict) || errors.Is(err, ErrRewritten) || errors.Is(err, ErrBadRemote) {
			return fmt.Sprintf("%v; showing the log as %s", err, staleness(st.LastSync)), nil
		}
		return "", err
	}
	return "", nil
}
