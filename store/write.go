package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// The commit path. Every write to the log, whatever it records, goes
// through Write, in this order, and nowhere else:
//
//  1. take the log's lock (lock.go) and finish what a killed meta left
//     half done (journal.go);
//  2. pull, unless offline (sync.go);
//  3. read meta.yaml afresh, since the pull may have changed it;
//  4. hand the caller a Tx to place apps and add what it records;
//  5. per commit: check leases, stamp and validate the events, note the
//     files in the journal, write them, commit, update the index;
//  6. push, with retries: a write that must reach the remote first (a
//     lease) is taken back and decided again on top of what came in; one
//     that replaces a file another operator changed meanwhile is taken
//     back and refused.

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
	newCfg  []byte
	// Message is the subject of the commit of env and meta.yaml changes
	// when it records more than one event, e.g. "operator rm alice:
	// re-encrypt 3 env files".
	Message string
}

// txEvent is an event to record at addr, with the env file it writes.
type txEvent struct {
	addr projects.Address
	ev   *metav1.Event
	env  []byte
}

// Config is meta.yaml as the write found it after its pull.
func (tx *Tx) Config() config.Config { return tx.cfg }

// Place settles which project/env an event for a.App goes to (see place):
// server, when not empty, is the abra server whose env file names the app.
func (tx *Tx) Place(a *metav1.Address, server string) (projects.Address, error) {
	return tx.s.place(tx.tip, tx.cfg, a, server)
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
		return nil, fmt.Errorf("%w: %s has changes that are not committed (edited with sops by hand?): `git -C %s checkout -- %s` drops them, or record them with `meta env import %s <(sops decrypt %s)`", ErrConflict, p, tx.s.root, p, a.App, p)
	}
	return committed, nil
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

// PutConfig replaces the operators and access rules in meta.yaml.
func (tx *Tx) PutConfig(c config.Config) error {
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
	release, err := lock(s.gitDir)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := s.repairAll(); err != nil {
		return nil, err
	}
	online := !opts.Offline && s.HasRemote(ctx)
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
		tx.cfg = s.cfg
		if err := fn(tx); err != nil {
			return nil, err
		}
		if len(tx.adds) == 0 && len(tx.envs) == 0 && tx.newCfg == nil {
			return nil, ErrNoChange
		}
		out, err := s.commitTx(tx, actor, now, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range s.repo.Others(projects.Root) {
			out.Warnings = append(out.Warnings, "not committed by meta: "+o)
		}
		if !online {
			return out, nil
		}
		if !tx.exclusive() {
			return out, s.pushWritten(ctx, tx, out)
		}
		perr := s.pushOnce(ctx)
		if perr == nil {
			out.Pushed = true
			return out, nil
		}
		if uerr := s.undo(gitrepo.NewHash(out.Commit), tx.tip); uerr != nil {
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
	err := s.push(ctx)
	switch {
	case err == nil:
		out.Pushed = true
	case tx.replaces() && errors.Is(err, ErrConflict):
		if uerr := s.undo(gitrepo.NewHash(out.Commit), tx.tip); uerr != nil {
			return fmt.Errorf("%w; and taking this change back failed: %v", err, uerr)
		}
		return fmt.Errorf("%w: another operator changed the same file and pushed first; nothing was written, run the command again on top of their change", ErrConflict)
	default:
		out.Warnings = append(out.Warnings, fmt.Sprintf("committed here but not pushed: %v; `meta sync` pushes it", err))
	}
	return nil
}

// commitTx commits tx: each added event on its own, then the env and
// meta.yaml changes together. Events are a millisecond apart, so that their
// ids sort in the order of the write.
func (s *Store) commitTx(tx *Tx, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Written, error) {
	out := &Written{}
	batch := s.currentBatch()
	n := 0
	at := func() time.Time { n++; return now.Add(time.Duration(n-1) * time.Millisecond) }
	for _, e := range tx.adds {
		when := at()
		if err := s.commitRetrying(out, func(tip gitrepo.Hash) (*plannedCommit, error) {
			return s.planEvent(tip, e, actor, now, when, opts, batch)
		}); err != nil {
			return nil, err
		}
	}
	if tx.replaces() {
		whens := make([]time.Time, len(tx.envs))
		for i := range whens {
			whens[i] = at()
		}
		if err := s.commitRetrying(out, func(tip gitrepo.Hash) (*plannedCommit, error) {
			return s.planChange(tip, tx, actor, now, whens, opts, batch)
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// plannedCommit is one commit ready to be made: its files (records first),
// message, author and time, events, and for a lone event the app's next
// head.
type plannedCommit struct {
	files  []gitrepo.File
	msg    string
	actor  *metav1.Actor
	when   time.Time
	events []*metav1.Event
	paths  []string
	memo   *memo
}

type memo struct {
	addr projects.Address
	head *fold.Head
}

// commitRetrying plans a commit on the current tip and makes it, planning
// again when a git process outside meta moved the branch meanwhile.
func (s *Store) commitRetrying(out *Written, plan func(tip gitrepo.Hash) (*plannedCommit, error)) error {
	for attempt := 1; ; attempt++ {
		tip, err := s.repo.Head()
		if err != nil {
			return err
		}
		c, err := plan(tip)
		if err != nil {
			return err
		}
		commit, err := s.makeCommit(tip, c)
		if errors.Is(err, gitrepo.ErrRaced) && attempt < maxRaces {
			continue
		}
		if commit.IsZero() {
			return err
		}
		if err != nil { // committed; a later step (ref sync, index) failed
			out.Warnings = append(out.Warnings, err.Error())
		}
		out.Events = append(out.Events, c.events...)
		out.Paths = append(out.Paths, c.paths...)
		out.Commit = commit.String()
		if c.memo != nil && c.memo.head != nil {
			// The new event sits on every head, so the next head is one
			// fold step away: memoise it and the next read needs no refold.
			if tree, err := s.repo.TreeID(commit, c.memo.addr.Dir()); err == nil {
				s.cache.StoreHead(c.memo.addr, tree, c.memo.head)
			}
		}
		return nil
	}
}

// makeCommit notes c's files in the journal, writes them into the work
// tree and commits them on tip. A zero commit means nothing was committed,
// and the work tree is as it was.
func (s *Store) makeCommit(tip gitrepo.Hash, c *plannedCommit) (gitrepo.Hash, error) {
	paths := make([]string, len(c.files))
	for i, f := range c.files {
		paths[i] = f.Path
	}
	// The note lets the next meta command finish or undo this commit if
	// the process dies half way.
	if err := s.journal.noteCommit(paths); err != nil {
		return gitrepo.ZeroHash, err
	}
	restore := func() {
		for _, p := range paths {
			s.restoreFile(tip, p)
		}
		s.journal.clearCommit()
	}
	for _, f := range c.files {
		var err error
		if f.Replace {
			err = s.work.put(f.Path, f.Data, 0o644)
		} else {
			err = s.work.create(f.Path, f.Data)
		}
		if err != nil {
			restore()
			return gitrepo.ZeroHash, err
		}
	}
	sig := gitrepo.Signature{Name: c.actor.GetName(), Email: c.actor.GetEmail(), When: c.when}
	commit, err := s.repo.Commit(tip, c.files, c.msg, sig)
	if commit.IsZero() {
		restore()
		return commit, err
	}
	s.journal.clearCommit()
	return commit, err
}

// planEvent stamps and checks one added event for a commit on tip.
func (s *Store) planEvent(tip gitrepo.Hash, e txEvent, actor *metav1.Actor, now, when time.Time, opts AppendOptions, batch *Batch) (*plannedCommit, error) {
	head, err := s.headOrNil(tip, e.addr)
	if err != nil {
		return nil, err
	}
	ev := proto.Clone(e.ev).(*metav1.Event)
	if err := checkLease(head, ev, e.addr.App, actor, now, opts); err != nil {
		return nil, err
	}
	batch.mark(ev)
	idTime := stamp(ev, actor, e.addr, head, when)
	if l := ev.GetLock(); l != nil {
		// The lease runs from the event's own time, which a clock step
		// back may have put after now.
		l.Expires = timestamppb.New(idTime.Add(l.GetExpires().AsTime().Sub(now)))
	}
	if record.IsDeployKind(ev.GetKind()) && ev.GetEnvDigest() == "" {
		// The env file in force now is what this deploy ran with.
		if data, err := s.work.read(projects.EnvPath(e.addr)); err == nil {
			ev.EnvDigest = sealed.Digest(data)
		}
	}
	if rb := ev.GetRollback(); rb != nil && rb.GetFromVersion() == "" && head != nil {
		rb.FromVersion = head.Version
	}
	data, err := record.Marshal(ev)
	if err != nil {
		return nil, err
	}
	p := record.Path(ev)
	return &plannedCommit{
		files:  []gitrepo.File{{Path: p, Data: data}},
		msg:    commitMessage(ev),
		actor:  actor,
		when:   idTime,
		events: []*metav1.Event{ev},
		paths:  []string{p},
		memo:   &memo{addr: e.addr, head: fold.Next(head, ev)},
	}, nil
}

// planChange stamps and checks the env events of tx, with their env files
// and meta.yaml, for one commit on tip.
func (s *Store) planChange(tip gitrepo.Hash, tx *Tx, actor *metav1.Actor, now time.Time, whens []time.Time, opts AppendOptions, batch *Batch) (*plannedCommit, error) {
	c := &plannedCommit{when: now, actor: actor}
	var envFiles []gitrepo.File
	for i, e := range tx.envs {
		head, err := s.headOrNil(tip, e.addr)
		if err != nil {
			return nil, err
		}
		ev := proto.Clone(e.ev).(*metav1.Event)
		if err := checkLease(head, ev, e.addr.App, actor, now, opts); err != nil {
			return nil, err
		}
		batch.mark(ev)
		idTime := stamp(ev, actor, e.addr, head, whens[i])
		if i == 0 {
			c.when = idTime
		}
		data, err := record.Marshal(ev)
		if err != nil {
			return nil, err
		}
		p := record.Path(ev)
		c.events, c.paths = append(c.events, ev), append(c.paths, p)
		c.files = append(c.files, gitrepo.File{Path: p, Data: data})
		envFiles = append(envFiles, gitrepo.File{Path: projects.EnvPath(e.addr), Data: e.env, Replace: true})
	}
	c.files = append(c.files, envFiles...)
	if tx.newCfg != nil {
		c.files = append(c.files, gitrepo.File{Path: config.File, Data: tx.newCfg, Replace: true})
	}
	if len(c.events) == 1 && tx.newCfg == nil {
		c.msg = commitMessage(c.events[0])
	} else {
		c.msg = changeMessage(tx.Message, c.events, actor)
	}
	return c, nil
}

// headOrNil is the head of the app at a on tip, nil when it has no events.
func (s *Store) headOrNil(tip gitrepo.Hash, a projects.Address) (*fold.Head, error) {
	h, err := s.head(tip, a)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return h, err
}

// stamp fills in what the store, not the caller, says about an event
// appended at now: format, id, time, address, operator, parents (the app's
// current heads) and the command line with secrets redacted. It returns
// the time the id carries.
func stamp(ev *metav1.Event, actor *metav1.Actor, addr projects.Address, head *fold.Head, now time.Time) time.Time {
	ev.Format = record.FormatVersion
	ev.Id = record.NewID(now)
	idTime, _ := record.IDTime(ev.Id)
	ev.Time = timestamppb.New(idTime)
	ev.Address = &metav1.Address{Project: addr.Project, Env: addr.Env, App: addr.App}
	ev.Actor = proto.Clone(actor).(*metav1.Actor)
	ev.Parents = head.HeadIDs()
	ev.Command = record.RedactCommand(ev.Command)
	return idTime
}

// commitMessage is one readable line, then trailers git tools can parse.
func commitMessage(ev *metav1.Event) string {
	var subject strings.Builder
	subject.WriteString(record.KindName(ev.GetKind()) + " " + ev.GetAddress().GetApp())
	switch {
	case ev.GetSecret() != nil:
		subject.WriteString(" " + strings.TrimSpace(ev.GetSecret().GetName()+" "+ev.GetSecret().GetVersion()))
	case ev.GetVolume() != nil:
		subject.WriteString(" " + ev.GetVolume().GetName())
	case ev.GetVersion() != "":
		subject.WriteString(" " + ev.GetVersion())
	case ev.GetChaosVersion() != "":
		subject.WriteString(" " + ev.GetChaosVersion())
	}
	subject.WriteString(" by " + ev.GetActor().GetName())
	if ev.GetOutcome() != metav1.Outcome_OUTCOME_SUCCEEDED {
		subject.WriteString(" (" + record.OutcomeName(ev.GetOutcome()) + ")")
	}
	var b strings.Builder
	b.WriteString(oneLine(subject.String()) + "\n")
	if m := strings.TrimSpace(ev.GetMessage()); m != "" {
		b.WriteString("\n" + m + "\n")
	}
	b.WriteString("\nMeta-Event: " + ev.GetId() + "\n")
	b.WriteString("Meta-Operator: " + oneLine(record.Operator(ev.GetActor().GetName(), ev.GetActor().GetEmail())) + "\n")
	b.WriteString("Meta-Outcome: " + record.OutcomeName(ev.GetOutcome()) + "\n")
	return b.String()
}

// changeMessage is the commit message of a change with several events.
func changeMessage(subject string, events []*metav1.Event, actor *metav1.Actor) string {
	if subject == "" {
		subject = fmt.Sprintf("change %d env files", len(events))
	}
	var b strings.Builder
	b.WriteString(oneLine(subject+" by "+actor.GetName()) + "\n\n")
	for _, ev := range events {
		b.WriteString("Meta-Event: " + ev.GetId() + "\n")
	}
	b.WriteString("Meta-Operator: " + oneLine(record.Operator(actor.GetName(), actor.GetEmail())) + "\n")
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
