package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/afero"

	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// The commit path. Every write to the log, whatever it records, goes
// through Write, in this order, and nowhere else:
//
//  1. take this machine's turn at the remote, unless offline (turn.go),
//     then the log's lock (lock.go), and finish what a killed meta left
//     half done (journal.go);
//  2. pull, unless offline (sync.go);
//  3. read meta.yaml afresh, since the pull may have changed it;
//  4. hand the caller a Tx to place apps and add what it records;
//  5. per commit: check leases, stamp and validate the events, note the
//     files in the journal, write them, commit, update the index;
//  6. push, with retries: a write that must reach the remote first (a
//     lease), or that is news only if nobody recorded it first (an
//     observation), is taken back and decided again on top of what came
//     in; one that replaces a file another operator changed meanwhile is
//     taken back and refused.

// Written is what a write committed.
type Written struct {
	// Events are the events recorded, in the order of their commits, and
	// Paths their records.
	Events []*metav1.Event
	Paths  []string
	// Commit is the last commit made.
	Commit string
	// Pushed says the commits reached the remote.
	Pushed bool
	// Warnings are problems that did not stop the write, such as files
	// meta left uncommitted.
	Warnings []string
	// NewApps are the apps whose logs the write started: where, and why.
	NewApps []Placement
	// base is the parent of the write's first commit, what taking the
	// write back returns the branch to: not the tip the write started
	// from, for a person may have committed on it since (git commit,
	// while meta worked), and commitRetrying then made the write on
	// theirs. tip is the write's last commit, made counts its commits,
	// and split says a commit not the write's lies between two of them.
	base  gitrepo.Hash
	tip   gitrepo.Hash
	made  int
	split bool
}

// takeBack moves the branch back over the write's own commits, to where
// they began: a commit not the write's between two of them is not
// dropped for it (the write's commits then stand, with an error).
func (s *Store) takeBack(out *Written) error {
	if out == nil || out.made == 0 {
		return nil
	}
	if out.split {
		return fmt.Errorf("a commit made by hand lies between this write's commits %s and %s: they stay", out.base, out.tip)
	}
	return s.undo(out.tip, out.base)
}

// Tx is what one write puts into the log: new event records, each its own
// commit, and changes of the log's mutable files (sealed env files and
// meta.yaml) with the env events that describe them, together in one
// commit. Write hands it to its caller with the log locked and pulled.
type Tx struct {
	s       *Store
	tip     gitrepo.Hash
	cfg     config.Config
	cfgData []byte
	adds    []txEvent
	envs    []txEvent
	purges  []txEvent
	newCfg  []byte
	placed  []Placement // the new apps placed
	// group says the write is a hub's group commit (group.go): all or
	// nothing, whatever spoils it.
	group bool
	// Message is the subject of the commit of env and meta.yaml changes
	// when it records more than one event, e.g. "operator rm alice:
	// re-encrypt 3 env files".
	Message string
}

// txEvent is an event to record at addr, with the env file it writes or
// the record it purges.
type txEvent struct {
	addr  projects.Address
	ev    *metav1.Event
	env   []byte
	purge string
	// actor and opts, when set, are the event's own operator and options,
	// not the write's: a hub's group commit (group.go).
	actor *metav1.Actor
	opts  *AppendOptions
}

// Config is meta.yaml as the write found it after its pull.
func (tx *Tx) Config() config.Config { return tx.cfg }

// Tip is the commit the write starts from.
func (tx *Tx) Tip() gitrepo.Hash { return tx.tip }

// Place settles which project/env an event for a.App goes to (see place):
// server, when not empty, is the abra server whose env file names the app.
// A new app the write then adds events of is in Written.NewApps.
func (tx *Tx) Place(a *metav1.Address, server string) (projects.Address, error) {
	p, err := tx.s.place(tx.tip, tx.cfg, a, server)
	if err == nil && p.New && !slices.ContainsFunc(tx.placed, func(q Placement) bool { return q.Address == p.Address }) {
		tx.placed = append(tx.placed, p)
	}
	return p.Address, err
}

// Knows says the log, as the write found it after its pull, has events of
// the app at domain, anywhere.
func (tx *Tx) Knows(domain string) (bool, error) {
	found, err := tx.s.find(tx.tip, domain)
	return len(found) > 0, err
}

// newApps are the new apps the write placed and adds events of.
func (tx *Tx) newApps() []Placement {
	var out []Placement
	for _, p := range tx.placed {
		added := func(e txEvent) bool { return e.addr == p.Address }
		if slices.ContainsFunc(tx.adds, added) || slices.ContainsFunc(tx.envs, added) {
			out = append(out, p)
		}
	}
	return out
}

// Head is the head of the app at a before this write; nil when the log has
// no events for it.
func (tx *Tx) Head(a projects.Address) (*fold.Head, error) {
	h, err := tx.s.head(tx.tip, a)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return h, err
}

// Add records ev for the app at a, in a commit of its own. The caller sets
// what happened (kind, outcome, body, versions, message, command); the
// write sets the id, time, format, address, operator and parents.
func (tx *Tx) Add(a projects.Address, ev *metav1.Event) {
	tx.adds = append(tx.adds, txEvent{addr: a, ev: ev})
}

// Env returns the app's sealed env file as committed, nil when it has none.
// It refuses when the work tree's copy differs: someone edited it by hand
// and did not commit, and that edit must not vanish silently.
//
// When a quarantined commit changed the file, it returns the last valid
// version: a change made on it replaces the quarantined one and mends the
// log.
func (tx *Tx) Env(a projects.Address) ([]byte, error) {
	p := projects.EnvPath(a)
	committed, err := tx.s.repo.FileAt(tx.tip, p)
	if err != nil {
		return nil, err
	}
	have, err := tx.s.work.read(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if string(have) != string(committed) {
		return nil, fmt.Errorf("%w: %s has changes that are not committed (edited with sops by hand?): `git -C %s checkout -- %s` drops them, or record them with `meta env import %s <(sops decrypt %s)`", ErrUncommitted, p, tx.s.root, p, a.App, p)
	}
	if last, quarantined, err := tx.s.envAt(tx.tip, a); err != nil || quarantined {
		return last, err
	}
	return committed, nil
}

// EnvOver is Env for a change that replaces the whole file on purpose
// (meta env import, which is how a hand edit is recorded): an uncommitted
// hand edit does not stop it, and is kept in .git/meta/hand-edits, with a
// note saying so, before the change writes over it.
func (tx *Tx) EnvOver(a projects.Address) ([]byte, error) {
	data, err := tx.Env(a)
	if !errors.Is(err, ErrUncommitted) {
		return data, err
	}
	p := projects.EnvPath(a)
	have, err := tx.s.work.read(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if have != nil {
		keep := filepath.Join(tx.s.gitDir, "meta", "hand-edits", fmt.Sprintf("%s.%d", filepath.Base(p), time.Now().UnixNano()))
		if err := os.MkdirAll(filepath.Dir(keep), 0o700); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(afero.NewOsFs(), keep, have, 0o600); err != nil {
			return nil, fmt.Errorf("keep the hand edit of %s: %w", p, err)
		}
		tx.s.notef("replaced the hand edit of %s, which was not committed; a copy is kept in %s", p, keep)
	}
	if last, quarantined, err := tx.s.envAt(tx.tip, a); err != nil || quarantined {
		return last, err
	}
	return tx.s.repo.FileAt(tx.tip, p)
}

// Envs lists the apps that have a sealed env file.
func (tx *Tx) Envs() ([]projects.Address, error) { return tx.s.envApps(tx.tip) }

// PutEnv writes the app's sealed env file and records ev, an env event the
// caller filled with the change; PutEnv sets the kind and the digest.
func (tx *Tx) PutEnv(a projects.Address, data []byte, ev *metav1.Event) {
	ev = proto.Clone(ev).(*metav1.Event)
	ev.Kind = metav1.Kind_KIND_ENV
	ev.Outcome = metav1.Outcome_OUTCOME_SUCCEEDED
	ev.EnvDigest = sealed.Digest(data)
	tx.envs = append(tx.envs, txEvent{addr: a, ev: ev, env: data})
}

// PutConfig replaces the operators and access rules in meta.yaml. It
// refuses when the work tree's meta.yaml differs from the committed one:
// the operator edited it by hand, and that edit must not vanish.
func (tx *Tx) PutConfig(c config.Config) error {
	committed, err := tx.s.repo.FileAt(tx.tip, config.File)
	if err != nil {
		return err
	}
	if tx.tip.IsZero() {
		committed = tx.cfgData // a log being started
	}
	have, err := tx.s.work.read(config.File)
	if errors.Is(err, os.ErrNotExist) {
		have, err = nil, nil // deleted, as the tip has it
	}
	if err != nil || string(have) != string(committed) {
		return fmt.Errorf("%w: %s has changes that are not committed: commit them (git commit %s) or drop them (git checkout -- %s), then run the command again", ErrUncommitted, config.File, config.File, config.File)
	}
	if c.SignaturesRequired() && !tx.cfg.SignaturesRequired() {
		// The commit adopting the policy is judged by it, against the
		// operators listed before it (integrity's trust rule): refuse it
		// here rather than commit what every clone would quarantine.
		judge := tx.cfg
		judge.Signatures = config.SignaturesRequired
		if err := tx.s.checkSigner(judge); err != nil {
			return err
		}
	}
	data, err := c.Rewrite(tx.cfgData)
	if err != nil {
		return err
	}
	tx.newCfg, tx.cfg = data, c
	return nil
}

// exclusive says the write must reach the remote before anyone else's, or
// not be written at all: it takes or ends a lease.
func (tx *Tx) exclusive() bool {
	for _, e := range tx.adds {
		if record.IsLeaseKind(e.ev.GetKind()) {
			return true
		}
	}
	return false
}

// redecides says the write is one only worth making if it is still news
// once it reaches the remote: observations, which another observer (a
// second hub, an operator's meta observe) may have recorded first. Such a
// write whose push loses a race is decided again on top of the winner's,
// like a lock; one that cannot reach the remote at all stays here, like
// any append, for meta sync.
func (tx *Tx) redecides() bool {
	for _, e := range tx.adds {
		if e.ev.GetKind() != metav1.Kind_KIND_OBSERVE {
			return false
		}
	}
	return len(tx.adds) > 0 && len(tx.envs) == 0 && len(tx.purges) == 0 && tx.newCfg == nil
}

// replaces says the write replaces files another operator may change too.
func (tx *Tx) replaces() bool { return len(tx.envs) > 0 || tx.newCfg != nil }

// maxRaces bounds how often a commit is built again because a git process
// outside meta moved the branch meanwhile.
const maxRaces = 5

// Write runs fn with the log locked, pulled and meta.yaml read afresh, then
// commits what fn put into the Tx and pushes it (see the commit path
// above). fn returning an error, or putting nothing (ErrNoChange), writes
// nothing. now is the time of the write: its events' times derive from it.
func (s *Store) Write(ctx context.Context, actor *metav1.Actor, now time.Time, opts AppendOptions, fn func(*Tx) error) (*Written, error) {
	if actor == nil || strings.TrimSpace(actor.GetName()) == "" {
		return nil, fmt.Errorf("%w: no operator", record.ErrInvalid)
	}
	online := !opts.Offline && s.HasRemote(ctx)
	if online {
		// From the fetch to the push, this machine's other writers to the
		// remote wait (turn.go): the push then wins at once. Taken before
		// the log's lock, so that the clone's other writes wait on that
		// lock for this one's round trip only, never for its wait for the
		// turn, which may be long.
		defer s.takeTurn(ctx)()
	}
	release, err := lock(s.gitDir)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := s.repairAll(); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		if online {
			if err := s.pull(ctx); err != nil {
				if errors.Is(err, ErrSync) {
					err = fmt.Errorf("%w; to record it here and push it later with `meta sync`, pass --offline", err)
				}
				return nil, err
			}
		}
		tx := &Tx{s: s}
		if tx.tip, err = s.repo.Head(); err != nil {
			return nil, err
		}
		if tx.cfgData, err = s.reloadConfig(); err != nil {
			return nil, err
		}
		if err := s.refuseNewer(tx.tip); err != nil {
			return nil, err
		}
		if err := s.checkSigner(s.Config()); err != nil {
			return nil, err
		}
		tx.cfg = s.Config()
		if err := fn(tx); err != nil {
			return nil, err
		}
		if len(tx.adds) == 0 && len(tx.envs) == 0 && len(tx.purges) == 0 && tx.newCfg == nil {
			return nil, ErrNoChange
		}
		out, err := s.commitTx(tx, actor, now, opts)
		if errors.Is(err, gitrepo.ErrSign) || errors.Is(err, ErrConflict) || err != nil && tx.group {
			// One commit of the write could not be signed, or would undo
			// a hand commit made meanwhile: take back those before it,
			// so that the write is all or nothing.
			if uerr := s.takeBack(out); uerr != nil {
				return nil, fmt.Errorf("%w; and taking back the commits made before it failed: %v", err, uerr)
			}
			return nil, fmt.Errorf("%w; nothing was written", err)
		}
		if err != nil {
			return nil, err
		}
		out.NewApps = tx.newApps()
		for _, o := range s.repo.Others(projects.Root) {
			out.Warnings = append(out.Warnings, "not committed by meta: "+o)
		}
		if !online {
			return out, nil
		}
		if !tx.exclusive() && !tx.redecides() {
			if err := s.pushWritten(ctx, tx, out); err != nil {
				return nil, err
			}
			return out, nil
		}
		perr := s.pushOnce(ctx)
		if perr == nil {
			out.Pushed = true
			return out, nil
		}
		if !tx.exclusive() && !errors.Is(perr, gitrepo.ErrRejected) {
			out.Warnings = append(out.Warnings, fmt.Sprintf("committed here but not pushed: %v; `meta sync` pushes it", perr))
			return out, nil
		}
		if uerr := s.takeBack(out); uerr != nil {
			return nil, fmt.Errorf("%w: %w; and taking the event back failed: %v", ErrSync, perr, uerr)
		}
		if !errors.Is(perr, gitrepo.ErrRejected) || attempt == maxPushes {
			return nil, fmt.Errorf("%w: %w; nothing was written: a %s must reach the remote to count (pass --offline to take it in this clone only)", ErrSync, perr, record.KindName(tx.adds[0].ev.GetKind()))
		}
		// Someone else's events came first: decide again on top of them.
		time.Sleep(backoff(attempt))
	}
}

// pushWritten pushes a write that need not be first: a failed push leaves
// it committed here with a warning, except a change of a file another
// operator changed and pushed first, which is taken back.
func (s *Store) pushWritten(ctx context.Context, tx *Tx, out *Written) error {
	own, ok := s.repo.Linear(tx.tip, gitrepo.NewHash(out.Commit))
	if !ok {
		var err error
		if own, err = s.repo.Commits(ctx, tx.tip, gitrepo.NewHash(out.Commit)); err != nil {
			return err
		}
	}
	err := s.push(ctx, own...)
	switch {
	case err == nil:
		out.Pushed = true
	case tx.replaces() && errors.Is(err, ErrConflict):
		if uerr := s.takeBack(out); uerr != nil {
			return fmt.Errorf("%w; and taking this change back failed: %v", err, uerr)
		}
		// This clone then takes the change that won, so that the
		// operator's next command starts from it.
		if perr := s.pull(ctx); perr != nil {
			return fmt.Errorf("%w: another operator changed the same file and pushed first; nothing was written, and bringing in their change failed: %v", ErrConflict, perr)
		}
		return fmt.Errorf("%w: another operator changed the same file and pushed first; nothing was written: run the command again on top of their change", ErrConflict)
	case errors.Is(err, ErrBroken):
		out.Warnings = append(out.Warnings, fmt.Sprintf("committed here but not pushed: %v", err))
	default:
		out.Warnings = append(out.Warnings, fmt.Sprintf("committed here but not pushed: %v; `meta sync` pushes it", err))
	}
	return nil
}

// refuseNewer refuses a write to a log whose meta.yaml, at tip, a newer
// meta wrote: this meta cannot know what its rules ask of a write. Reads
// go on (under the last meta.yaml this meta knows, the newer one's commit
// quarantined); the way out is a newer meta.
func (s *Store) refuseNewer(tip gitrepo.Hash) error {
	if tip.IsZero() {
		return nil
	}
	data, err := s.repo.FileAt(tip, config.File)
	if err != nil || data == nil {
		return err
	}
	if _, err := config.Parse(data); errors.Is(err, config.ErrNewer) {
		return fmt.Errorf("%w; nothing was written", err)
	}
	return nil
}
