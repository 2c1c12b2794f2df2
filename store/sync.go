package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Errors of sharing the log through a remote.
var (
	// ErrSync: the remote could not be fetched from or pushed to.
	ErrSync = errors.New("sync failed")
	// ErrUnrelated: the remote's history shares no commit with this
	// clone's: another log, or this one with all of history rewritten.
	ErrUnrelated = errors.New("the remote holds another history")
	// ErrConflict: a remote change collides with files the operator
	// changed by hand, or with a change of the same file made here.
	ErrConflict = gitrepo.ErrConflict
	// ErrUncommitted: a write would replace a file the operator changed
	// by hand and did not commit (meta.yaml, an env file), so it does not.
	ErrUncommitted = errors.New("uncommitted changes in the way")
	// ErrUnexpected: the app's head is not what the operator expected.
	ErrUnexpected = errors.New("head is not as expected")
	// ErrBroken: a local commit breaks the log's rules (it modifies or
	// deletes a record, say), so meta does not push it.
	ErrBroken = errors.New("a local commit breaks the log")
	// ErrUnsafePath: commits to bring in hold a path git never checks
	// out (into .git, out of the work tree), so nothing of them is.
	ErrUnsafePath = errors.New("a path git never checks out")
)

// maxPushes bounds how often a write retries its push when others keep
// pushing first.
const maxPushes = 10

// Source names the log for followers: its remote's URL, else its
// directory as a file URL.
func (s *Store) Source(ctx context.Context) string {
	if url := s.repo.RemoteURL(ctx); url != "" {
		return gitrepo.ShownURL(url)
	}
	return "file://" + s.root
}

// HasRemote says whether the log is shared through a remote.
func (s *Store) HasRemote(ctx context.Context) bool { return s.repo.RemoteURL(ctx) != "" }

// pull fetches the remote and integrates what it has that this clone does
// not. The caller holds the lock.
func (s *Store) pull(ctx context.Context) error { return s.pullWith(ctx, pullOptions{}) }

// pullOptions change what a pull takes in.
type pullOptions struct {
	// rejoin takes a remote that shares no commit with this clone.
	rejoin bool
	// own are the commits of the write being pushed: one that collides is
	// the write's failure (ErrConflict), never set aside, for the operator
	// is there to run it again.
	own []gitrepo.Hash
}

func (s *Store) pullWith(ctx context.Context, opts pullOptions) error {
	s.state.attempted(time.Now())
	s.fetched.Store(true)
	seen, err := s.repo.RemoteTip()
	if err != nil {
		return err
	}
	remote, err := s.repo.Fetch(ctx)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrSync, err)
		s.state.failed(time.Now(), err)
		return err
	}
	if err := s.integrate(ctx, remote, s.seenBefore(seen), opts); err != nil {
		s.state.failed(time.Now(), err)
		return err
	}
	if err := s.lostTaken(); err != nil {
		return err
	}
	s.state.synced(time.Now())
	return nil
}

// integrate makes the local branch hold everything remote holds, keeping
// local commits the remote lacks on top of it (replayed, so history stays
// linear), and brings the work tree, the index and meta.yaml along.
//
// Nothing the remote holds is refused: its commits are checked one by one
// and what they break is quarantined (see package integrity). Commits this
// clone fetched from the remote before (seen) that it no longer has, after
// a force-push, are replayed with this clone's own: lost events come back
// as the same record files. A local commit that changes a file the remote
// changed too (an env file edited offline, say) is set aside (aside.go),
// and the rest goes on. rejoin takes a remote that shares no commit with
// this clone, replaying all of this clone's history on top of it.
func (s *Store) integrate(ctx context.Context, remote, seen gitrepo.Hash, opts pullOptions) error {
	local, err := s.repo.Head()
	if err != nil {
		return err
	}
	if remote.IsZero() {
		return nil
	}
	// A remote that no longer holds what this clone pinned is refused
	// before anything of it is taken in or replayed on it (pin.go).
	if err := s.guardPin(ctx, remote); err != nil {
		return err
	}
	if remote == local {
		return s.checkPin(ctx, remote)
	}
	next := remote // local is empty, or behind: fast-forward
	base := gitrepo.ZeroHash
	if !local.IsZero() {
		// One merge-base answers everything: it walks back only to the
		// common commit, where "is remote an ancestor of local?" would walk
		// all of history to say no. Before it, the common cases (behind or
		// ahead by a few commits) are read in-process, without a git.
		switch {
		case s.repo.LinearAncestor(local, remote): // behind: the common case, without git
			base = local
		case s.repo.LinearAncestor(remote, local):
			base = remote
		default:
			var ok bool
			if base, ok = s.repo.LinearMergeBase(local, remote); !ok {
				if base, err = s.repo.MergeBase(ctx, local, remote); err != nil {
					return err
				}
			}
		}
		if base.IsZero() && !opts.rejoin {
			return fmt.Errorf("%w: the remote's history shares no commit with this clone's: it is another log, or someone rewrote all of its history. If it is this log, `meta sync --rejoin` takes the remote's history and re-adds this clone's events on top of it; else point the clone at its own remote (git remote set-url origin URL)", ErrUnrelated)
		}
	}
	if err := s.noteLost(ctx, remote, seen); err != nil {
		return err
	}
	if !local.IsZero() {
		switch {
		case base == remote:
			return nil // the remote has nothing this clone lacks
		case base == local:
		default:
			at, err := s.checkpointRemote(ctx, remote)
			if err != nil {
				return err
			}
			// The replayed commits are new ones, signed by this clone:
			// under the remote's rules.
			if err := s.checkSignerAt(remote); err != nil {
				return err
			}
			if next, err = s.replayOnto(ctx, remote, local, base, seen, opts.own, at); err != nil {
				return err
			}
		}
	}
	if next == local {
		return s.checkPin(ctx, remote)
	}
	if _, err := s.checkpointRemote(ctx, remote); err != nil {
		return err
	}
	if err := s.moveTo(local, next, "meta: sync with "+gitrepo.Remote); err != nil {
		return err
	}
	s.noteQuarantined(ctx, local, next)
	s.noteAmbiguous(ctx, local, next)
	return s.checkPin(ctx, remote)
}

// replayOnto replays the local commits remote lacks on top of it, setting
// aside those that collide.
func (s *Store) replayOnto(ctx context.Context, remote, local, base, seen gitrepo.Hash, own []gitrepo.Hash, atRemote *integrity.State) (gitrepo.Hash, error) {
	mine, ok := s.repo.Linear(base, local)
	if base.IsZero() || !ok {
		var err error
		if mine, err = s.repo.Commits(ctx, remote, local); err != nil {
			return gitrepo.ZeroHash, err
		}
	}
	// What a quarantined commit the remote had broke is not replayed: a
	// force-push that dropped it does not get it back. (This clone's own,
	// never pushed, stay as they are, for the push to stop on.)
	broken := map[string]map[string]bool{}
	lost, err := s.lostCommits(ctx, remote, seen)
	if err != nil {
		return gitrepo.ZeroHash, err
	}
	if st, err := s.stateAt(local); err == nil && len(lost) > 0 {
		for _, f := range st.Findings {
			if !slices.Contains(lost, gitrepo.NewHash(f.Commit)) {
				continue
			}
			for _, p := range f.Problems {
				if broken[f.Commit] == nil {
					broken[f.Commit] = map[string]bool{}
				}
				broken[f.Commit][p.Path] = true
			}
		}
	}
	recorded, err := s.recordedAt(remote, mine)
	if err != nil {
		return gitrepo.ZeroHash, err
	}
	next, err := s.repo.Replay(ctx, remote, mine, gitrepo.ReplayOptions{
		Keep: func(c gitrepo.Hash, ch gitrepo.FileChange) bool {
			if recorded[c.String()][ch.Path] {
				return false
			}
			// Nor is a record the remote purged.
			// A commit the trust rule refused whole (its problem has no
			// path) is replayed not at all: putting it back would sign a
			// stranger's change with this clone's key.
			return !broken[c.String()][ch.Path] && !broken[c.String()][""] && atRemote.Purged[ch.Path] == ""
		},
		SetAside: func(c gitrepo.Hash, conflict error) error {
			if slices.Contains(own, c) {
				return conflict
			}
			return s.setAside(ctx, c, conflict)
		},
	})
	if err != nil {
		return gitrepo.ZeroHash, err
	}
	return next, nil
}

// recordedAt lists, per commit of mine, the records it adds that remote
// already holds. An event id is recorded once: a record file the remote
// has at the same path is the same event, which an operator's meta
// recorded on its direct path while a hub it had handed the event to was
// still pushing it, or the other way round (group.go). It is not replayed,
// so neither copy becomes a conflict.
func (s *Store) recordedAt(remote gitrepo.Hash, mine []gitrepo.Hash) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	err := s.eachAddedRecord(mine, func(c gitrepo.Hash, path string, _ projects.Record) error {
		has, err := s.repo.Has(remote, path)
		if err != nil {
			return err
		}
		if has {
			if out[c.String()] == nil {
				out[c.String()] = map[string]bool{}
			}
			out[c.String()][path] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lostCommits are the commits this clone fetched from the remote before
// (seen) that the remote no longer has.
func (s *Store) lostCommits(ctx context.Context, remote, seen gitrepo.Hash) ([]gitrepo.Hash, error) {
	if seen.IsZero() || seen == remote {
		return nil, nil
	}
	if s.repo.LinearAncestor(seen, remote) {
		return nil, nil // the remote went on from what was seen: nothing lost
	}
	if ok, err := s.repo.IsAncestor(ctx, seen, remote); err != nil || ok {
		return nil, err
	}
	return s.repo.Commits(ctx, remote, seen)
}

// noteLost tells of the events the remote lost since this clone fetched
// seen from it (someone force-pushed an older history): this clone has
// them still, and puts them back on top of the remote's new tip, as the
// same record files, with its own unpushed commits.
func (s *Store) noteLost(ctx context.Context, remote, seen gitrepo.Hash) error {
	lost, err := s.lostCommits(ctx, remote, seen)
	if err != nil {
		return err
	}
	var ids []string
	var st *integrity.State
	if local, err := s.repo.Head(); err == nil && len(lost) > 0 {
		st, _ = s.stateAt(local) // what this clone took the lost commits in as
	}
	for _, c := range lost {
		if st != nil {
			if f, ok := st.Finding(c.String()); ok && slices.ContainsFunc(f.Problems, func(p integrity.Problem) bool { return p.Path == "" }) {
				continue // refused whole by the trust rule: not put back (replayOnto)
			}
		}
		parent, err := s.repo.Parent(c)
		if err != nil {
			return err
		}
		added, err := s.repo.Added(ctx, parent, c, projects.Root)
		if err != nil {
			return err
		}
		for _, ch := range added {
			if rec, err := projects.ParseRecordPath(ch.Path); err == nil && ch.From.IsZero() {
				ids = append(ids, rec.Address.App+" "+rec.ID)
			}
		}
	}
	if len(ids) > 0 {
		s.notef("the remote lost %s this clone had (someone force-pushed an older history); this clone puts them back on top of it: %s", record.Count(len(ids), "event"), strings.Join(ids, ", "))
	}
	return nil
}

// isEnvPath says p is an app's sealed env file: the one kind of file under
// projects/ that changes in place.
func isEnvPath(p string) bool {
	_, err := projects.ParseEnvPath(p)
	return err == nil
}

// preflight refuses changes that would lose files the operator changed by
// hand and the remote changes too.
func (s *Store) preflight(changes []gitrepo.FileChange) error {
	var unsafe []string
	for _, ch := range changes {
		if !checkoutable(ch.Path) {
			unsafe = append(unsafe, strconv.Quote(ch.Path))
		}
	}
	if len(unsafe) > 0 {
		// As git checkout refuses them: the remote's hooks in .git/hooks
		// would run at the operator's next git commit, its .git/config
		// at meta's next git process, a ".." would write anywhere.
		return fmt.Errorf("%w: %w: the commits to bring in hold %s: nothing of them was taken in; the commit that added it must go (a force-push of the remote's branch without it)", ErrSync, ErrUnsafePath, strings.Join(unsafe, ", "))
	}
	var collide []string
	for _, ch := range changes {
		have, err := s.work.blob(ch.Path)
		if err != nil {
			return err
		}
		if have != ch.From && have != ch.To {
			collide = append(collide, ch.Path)
		}
	}
	if len(collide) > 0 {
		return fmt.Errorf("%w: the remote changes %s, which you changed here and did not commit; move them out of the way (git stash -u), then sync", ErrConflict, strings.Join(collide, ", "))
	}
	return nil
}

// materialize writes changes into the work tree and the index, and reads
// meta.yaml again when they change it.
func (s *Store) materialize(changes []gitrepo.FileChange) error {
	var staged, deleted []string
	cfgChanged := false
	// Deletions first: a file a commit put where a directory was (or the
	// other way round) goes before what takes its place is written.
	for _, ch := range changes {
		cfgChanged = cfgChanged || ch.Path == config.File
		if ch.To.IsZero() {
			if err := s.work.remove(ch.Path); err != nil {
				return err
			}
			deleted = append(deleted, ch.Path)
		}
	}
	for _, ch := range changes {
		if ch.To.IsZero() {
			continue
		}
		if !ch.IsFile() && !ch.IsSymlink() {
			continue // a submodule entry: no file (diffTrees skips them)
		}
		data, err := s.repo.ReadBlob(ch.To)
		if err != nil {
			return err
		}
		if ch.IsSymlink() {
			// A link someone committed (over a record, say: the log's rules
			// read that record as first written). The work tree holds what
			// the commit holds, as after git checkout.
			if err := s.work.link(ch.Path, string(data)); err != nil {
				return err
			}
			staged = append(staged, ch.Path)
			continue
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
	// Unstaged first, for the same reason: the index may not hold a file
	// and a directory of one name.
	if err := s.repo.Unstage(deleted...); err != nil {
		return err
	}
	if err := s.repo.Stage(staged...); err != nil {
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
	return s.moveTo(tip, prev, "meta: take back a change the remote refused")
}

// push sends local commits to the remote; when others pushed first it
// integrates theirs and tries again, a bounded number of times with jitter
// so racing writers spread out.
func (s *Store) push(ctx context.Context, own ...gitrepo.Hash) error {
	for attempt := 1; ; attempt++ {
		err := s.pushOnce(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrBroken) {
			return err
		}
		if !errors.Is(err, gitrepo.ErrRejected) || attempt == maxPushes {
			return fmt.Errorf("%w: %w", ErrSync, err)
		}
		time.Sleep(backoff(attempt))
		if err := s.pullWith(ctx, pullOptions{own: own}); err != nil {
			return err
		}
	}
}

// pushOnce pushes once, remembering a success as the last sync. A local
// commit that breaks the log is never pushed (see checkUnpushed).
func (s *Store) pushOnce(ctx context.Context) error {
	if err := s.checkUnpushed(ctx); err != nil {
		return err
	}
	if err := s.repo.Push(ctx); err != nil {
		return err
	}
	s.state.synced(time.Now())
	// What the remote now holds, this clone saw: the pin moves on to it,
	// so a remote that drops it later is refused (pin.go).
	if tip, err := s.repo.RemoteTip(); err == nil {
		if err := s.checkPin(ctx, tip); err != nil {
			return err
		}
	}
	return nil
}

// backoff is how long to wait before push attempt n+1: exponential, capped,
// with full jitter, so writers that collided spread out instead of
// colliding again.
func backoff(attempt int) time.Duration {
	ceiling := 25 * time.Millisecond << min(attempt, 6)
	return time.Duration(rand.Int64N(int64(ceiling))) + 5*time.Millisecond
}

// SyncOptions change what Sync takes in.
type SyncOptions struct {
	// Rejoin takes a remote whose history shares no commit with this
	// clone's as this log's, replaying this clone's history on top of it.
	Rejoin bool
}

// SyncReport is what a sync did, for the one line `meta sync` says.
type SyncReport struct {
	// Remote is where the log was synced with.
	Remote string
	// TookIn counts the events the remote brought that this clone lacked.
	TookIn int
	// Commits counts the remote's commits it brought, events or not (a
	// change of meta.yaml, a commit quarantined).
	Commits int
	// Pushed counts this clone's events the remote took.
	Pushed int
}

// lockForRemote takes the log's lock and finishes what an interrupted
// write left, for work with the remote: ErrSync when the log has none.
func (s *Store) lockForRemote(ctx context.Context) (release func(), err error) {
	release, err = lock(s.gitDir)
	if err != nil {
		return nil, err
	}
	if err := s.repairAll(); err != nil {
		release()
		return nil, err
	}
	if !s.HasRemote(ctx) {
		release()
		return nil, fmt.Errorf("%w: this log has no remote (meta init --remote, or git remote add origin URL)", ErrSync)
	}
	return release, nil
}

// Sync pushes this clone's unpushed events and integrates the remote's.
func (s *Store) Sync(ctx context.Context, opts SyncOptions) (SyncReport, error) {
	fail := func(err error) (SyncReport, error) { return SyncReport{}, fmt.Errorf("sync: %w", err) }
	defer s.takeTurn(ctx)() // before the lock, as in Write
	release, err := s.lockForRemote(ctx)
	if err != nil {
		return fail(err)
	}
	defer release()
	before, err := s.repo.Head()
	if err != nil {
		return fail(err)
	}
	if err := s.pullWith(ctx, pullOptions{rejoin: opts.Rejoin}); err != nil {
		return fail(err)
	}
	report := SyncReport{Remote: gitrepo.ShownURL(s.repo.RemoteURL(ctx))}
	if remote, err := s.repo.RemoteTip(); err == nil {
		commits, err := s.repo.Commits(ctx, before, remote)
		if err != nil {
			return fail(err)
		}
		in, err := s.added(commits, before, "")
		if err != nil {
			return fail(err)
		}
		report.TookIn, report.Commits = len(in), len(commits)
	}
	out, err := s.Unpushed(ctx, "")
	if err != nil {
		return fail(err)
	}
	report.Pushed = len(out)
	if err := s.push(ctx); err != nil {
		return fail(err)
	}
	return report, nil
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

// RefreshAfterMiss is what a read does when it found nothing that the
// remote may have by now (an app whose first event another operator just
// pushed, an env file just sealed to this operator): it fetches, whatever
// the cooldown, unless this Store fetched already since it was opened, and
// says whether it did, so that the read asks again. A miss is answered
// after at most one fetch: the cooldown spares the remote the reads that
// found what they wanted.
func (s *Store) RefreshAfterMiss(ctx context.Context) (fetched bool, warning string, err error) {
	if s.fetched.Load() || !s.HasRemote(ctx) {
		return false, "", nil
	}
	warning, err = s.Refresh(ctx, true)
	return err == nil && warning == "", warning, err
}

// Refresh is what a read does before answering: fetch and integrate, at
// most once per cooldown unless forced. When the remote cannot be reached
// it returns a warning saying how old the local view is, not an error.
func (s *Store) Refresh(ctx context.Context, force bool) (warning string, err error) {
	if !s.HasRemote(ctx) {
		return "", nil
	}
	st := s.state.load()
	if !force && time.Since(st.LastAttempt) < s.Config().Cooldown() {
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
		if errors.Is(err, ErrSync) || errors.Is(err, ErrConflict) || errors.Is(err, ErrUnrelated) {
			return fmt.Sprintf("%v; showing the log as %s", err, staleness(st.LastSync)), nil
		}
		return "", err
	}
	return "", nil
}
