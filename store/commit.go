package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// The commits of a write: step 5 of the commit path (see write.go).

// commitTx commits tx: each added event on its own, then the env and
// meta.yaml changes together. Events are a millisecond apart, so that their
// ids sort in the order of the write. On an error, what it returns says
// what it committed before (Store.takeBack).
func (s *Store) commitTx(tx *Tx, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Written, error) {
	out := &Written{}
	batch := s.currentBatch()
	n := 0
	at := func() time.Time { n++; return now.Add(time.Duration(n-1) * time.Millisecond) }
	change := func() error {
		whens := make([]time.Time, len(tx.envs))
		for i := range whens {
			whens[i] = at()
		}
		return s.commitRetrying(out, func(tip gitrepo.Hash) (*plannedCommit, error) {
			return s.planChange(tip, tx, actor, now, whens, opts, batch)
		})
	}
	// A meta.yaml change that comes without env files (the version a
	// recipe's log needs) goes into the first event's commit: the records
	// that need it never stand in history before it, and an event that
	// cannot be written leaves meta.yaml as it was.
	cfgFirst := tx.replaces() && len(tx.envs) == 0 && len(tx.adds) > 0
	// The events go on as one chain (one sync, one move of the branch),
	// each its own commit planned on the one before.
	plans := make([]func(gitrepo.Hash) (*plannedCommit, error), len(tx.adds))
	for i, e := range tx.adds {
		when := at()
		plans[i] = func(tip gitrepo.Hash) (*plannedCommit, error) {
			c, err := s.planEvent(tip, e, actor, now, when, opts, batch)
			if err == nil && i == 0 && cfgFirst {
				if err := s.unchangedSince(tx, tip, config.File); err != nil {
					return nil, err
				}
				c.files = append(c.files, gitrepo.File{Path: config.File, Data: tx.newCfg, Replace: true})
			}
			return c, err
		}
	}
	if len(plans) > 0 {
		if err := s.commitRetrying(out, plans...); err != nil {
			return out, err
		}
	}
	for _, e := range tx.purges {
		tip, err := s.repo.Head()
		if err != nil {
			return out, err
		}
		commit, st, err := s.commitPurge(tip, e, actor, now, at(), opts, batch)
		if err != nil {
			return out, err
		}
		out.noteMade(tip, commit, 1)
		out.Events, out.Paths, out.Commit = append(out.Events, st.ev), append(out.Paths, st.path), commit.String()
	}
	if tx.replaces() && !cfgFirst {
		if err := change(); err != nil {
			return out, err
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

// commitRetrying plans commits, each on the one before from the current
// tip, and makes them (commitChain), planning all again when a git process
// outside meta moved the branch meanwhile.
func (s *Store) commitRetrying(out *Written, plans ...func(tip gitrepo.Hash) (*plannedCommit, error)) error {
	for attempt := 1; ; attempt++ {
		tip, err := s.repo.Head()
		if err != nil {
			return err
		}
		cc := s.newChain(tip)
		for _, plan := range plans {
			c, err := plan(cc.tip())
			if err == nil {
				err = cc.add(c)
			}
			if err != nil {
				cc.abandon()
				return err
			}
		}
		commit, err := cc.finish()
		if errors.Is(err, gitrepo.ErrRaced) && attempt < maxRaces {
			continue
		}
		if commit.IsZero() {
			return err
		}
		if err != nil { // committed; a later step (ref sync, index) failed
			out.Warnings = append(out.Warnings, err.Error())
		}
		for _, c := range cc.made {
			out.Events = append(out.Events, c.events...)
			out.Paths = append(out.Paths, c.paths...)
		}
		out.noteMade(tip, commit, len(cc.made))
		out.Commit = commit.String()
		return nil
	}
}

// noteMade notes n commits the write made from parent to tip.
func (out *Written) noteMade(parent, tip gitrepo.Hash, n int) {
	if out.made == 0 {
		out.base = parent
	} else if parent != out.tip {
		out.split = true
	}
	out.tip, out.made = tip, out.made+n
}

// commitChain is the commits of one write, made one on another
// (gitrepo.Chain) and put on the branch together by finish: the commit
// sequence, for one commit or a hub's group of many. The integrity state
// and the heads' memos follow each commit as it is made, so that the next
// is planned on it; the state is kept on disk only once the branch holds
// the chain.
type commitChain struct {
	s     *Store
	chain *gitrepo.Chain
	made  []*plannedCommit
	// from is the integrity state when the chain began, the one reads
	// use again when it is abandoned.
	from *integrity.State
}

func (s *Store) newChain(tip gitrepo.Hash) *commitChain {
	s.imu.Lock()
	defer s.imu.Unlock()
	return &commitChain{s: s, chain: s.repo.NewChain(tip), from: s.integ}
}

// tip is the chain's last commit, the tip the next is planned on.
func (cc *commitChain) tip() gitrepo.Hash { return cc.chain.Tip() }

// add commits c on the chain's tip.
func (cc *commitChain) add(c *plannedCommit) error {
	s := cc.s
	parent := cc.tip()
	sig := gitrepo.Signature{Name: c.actor.GetName(), Email: c.actor.GetEmail(), When: c.when}
	commit, err := cc.chain.Commit(c.files, c.msg, sig)
	if err != nil {
		return err
	}
	cc.made = append(cc.made, c)
	s.advanceIntegrity(parent, commit, c.files, sig, c.msg)
	if c.memo != nil && c.memo.head != nil && !s.quarantined(commit) {
		// The new event sits on every head, so the next head is one
		// fold step away: memoise it and the next read needs no refold.
		// Not for a commit history leaves out (one the trust rule
		// refuses): its event is on no head. A memo is true of the
		// tree it is keyed by whether or not the chain is finished.
		if key, err := s.memoKey(commit, c.memo.addr); err == nil {
			s.cache.StoreHead(c.memo.addr, key, c.memo.head)
		}
	}
	return nil
}

// abandon gives up a chain not finished: reads go on from the state at
// its parent.
func (cc *commitChain) abandon() {
	cc.s.imu.Lock()
	defer cc.s.imu.Unlock()
	cc.s.integ = cc.from
}

// finish notes the chain's files in the journal, writes them into the
// work tree and puts the chain on the branch. A zero commit means nothing
// was committed, and the work tree is as it was.
func (cc *commitChain) finish() (gitrepo.Hash, error) {
	s := cc.s
	var files []gitrepo.File
	for _, c := range cc.made {
		files = append(files, c.files...)
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	// A file where a record goes is not the write's (one left there by
	// hand): refused before the note, which would have the next command
	// remove it had this one died.
	for _, f := range files {
		if _, err := s.work.fs.Stat(f.Path); err == nil && !f.Replace {
			cc.abandon()
			return gitrepo.ZeroHash, fmt.Errorf("write %s: %w", f.Path, fs.ErrExist)
		}
	}
	// The note lets the next meta command finish or undo this commit if
	// the process dies half way.
	if err := s.journal.noteCommit(paths); err != nil {
		cc.abandon()
		return gitrepo.ZeroHash, err
	}
	base, _ := s.repo.Head()
	// restore puts back the first n files as the branch has them.
	restore := func(n int) {
		for _, p := range paths[:n] {
			s.restoreFile(base, p)
		}
		s.journal.clearCommit()
		cc.abandon()
	}
	for i, f := range files {
		var err error
		if f.Replace {
			err = s.work.put(f.Path, f.Data, 0o644)
		} else {
			err = s.work.create(f.Path, f.Data)
		}
		if err != nil {
			restore(i) // what is there of file i is not the write's
			return gitrepo.ZeroHash, err
		}
	}
	commit, err := cc.chain.Finish()
	if commit.IsZero() {
		restore(len(paths))
		return commit, err
	}
	// Committed, but a later step failed (the index not updated, say):
	// the note stays, and the next meta command finishes the commit as it
	// does one a killed meta left (repairCommit).
	if err == nil {
		s.journal.clearCommit()
	}
	s.keepIntegrity(commit)
	for _, f := range files {
		if f.Path == config.File {
			// The store answers with the meta.yaml it just committed.
			if _, rerr := s.reloadConfig(); rerr != nil && err == nil {
				err = rerr
			}
			break
		}
	}
	return commit, err
}

// stamped is an event ready for a commit: checked against the app's
// lease, stamped, validated and encoded.
type stamped struct {
	ev   *metav1.Event
	head *fold.Head // the app's head before it
	data []byte
	path string
	at   time.Time // the time its id carries
}

// stampEvent checks e against the lease on its app at tip, stamps a copy
// of its event at when and encodes it: what every event of a commit goes
// through, whatever it records.
func (s *Store) stampEvent(tip gitrepo.Hash, e txEvent, actor *metav1.Actor, now, when time.Time, opts AppendOptions, batch *Batch) (*stamped, error) {
	if e.actor != nil {
		actor = e.actor // an event a hub records for its operator (group.go)
	}
	if e.opts != nil {
		opts = *e.opts
	}
	head, err := s.headOrNil(tip, e.addr)
	if err != nil {
		return nil, err
	}
	ev := proto.Clone(e.ev).(*metav1.Event)
	if err := checkLease(head, ev, e.addr.App, actor, now, opts); err != nil {
		return nil, err
	}
	batch.mark(ev)
	ev.Id = "" // the store sets it, unless the operator's meta chose it
	if opts.ID != "" {
		if err := projects.ValidateID(opts.ID); err != nil {
			return nil, fmt.Errorf("%w: %w", record.ErrInvalid, err)
		}
		ev.Id = opts.ID
	}
	at := stamp(ev, actor, e.addr, head, when)
	if e.purge != "" {
		// The purged event leaves every read, and with it the link from
		// its parents to what came after: the purge event names them too,
		// or they would read as the heads of a fork.
		if data, err := s.repo.FileAt(tip, e.purge); err == nil && data != nil {
			if target, err := record.Unmarshal(data); err == nil {
				for _, p := range target.GetParents() {
					if !slices.Contains(ev.Parents, p) {
						ev.Parents = append(ev.Parents, p)
					}
				}
			}
		}
	}
	if l := ev.GetLock(); l != nil {
		// The lease runs from the event's own time, which a clock step
		// back may have put after now.
		l.Expires = timestamppb.New(at.Add(l.GetExpires().AsTime().Sub(now)))
	}
	if record.IsDeployKind(ev.GetKind()) && ev.GetEnvDigest() == "" && !ev.GetLocalEnv() {
		// The env file in force now is what this deploy ran with, unless
		// its recorder knows it ran with a local one.
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
	return &stamped{ev: ev, head: head, data: data, path: record.Path(ev), at: at}, nil
}

// planEvent plans the commit of one added event on tip.
func (s *Store) planEvent(tip gitrepo.Hash, e txEvent, actor *metav1.Actor, now, when time.Time, opts AppendOptions, batch *Batch) (*plannedCommit, error) {
	st, err := s.stampEvent(tip, e, actor, now, when, opts, batch)
	if err != nil {
		return nil, err
	}
	if e.actor != nil {
		actor = e.actor
	}
	return &plannedCommit{
		files:  []gitrepo.File{{Path: st.path, Data: st.data}},
		msg:    commitMessage(st.ev),
		actor:  actor,
		when:   st.at,
		events: []*metav1.Event{st.ev},
		paths:  []string{st.path},
		memo:   &memo{addr: e.addr, head: fold.Next(st.head, st.ev)},
	}, nil
}

// planChange plans the one commit of tx's env events, with their env
// files and meta.yaml, on tip.
func (s *Store) planChange(tip gitrepo.Hash, tx *Tx, actor *metav1.Actor, now time.Time, whens []time.Time, opts AppendOptions, batch *Batch) (*plannedCommit, error) {
	replaced := make([]string, 0, len(tx.envs)+1)
	for _, e := range tx.envs {
		replaced = append(replaced, projects.EnvPath(e.addr))
	}
	if tx.newCfg != nil {
		replaced = append(replaced, config.File)
	}
	if err := s.unchangedSince(tx, tip, replaced...); err != nil {
		return nil, err
	}
	c := &plannedCommit{when: now, actor: actor}
	var envFiles []gitrepo.File
	for i, e := range tx.envs {
		st, err := s.stampEvent(tip, e, actor, now, whens[i], opts, batch)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			c.when = st.at
		}
		c.events, c.paths = append(c.events, st.ev), append(c.paths, st.path)
		c.files = append(c.files, gitrepo.File{Path: st.path, Data: st.data})
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

// unchangedSince refuses to plan, on tip, a commit replacing files tx
// planned from its own tip, when a commit made since (by hand, while the
// write worked: the log's lock keeps other meta writes out) changed one
// of them: the write would undo that change, saying nothing of it.
func (s *Store) unchangedSince(tx *Tx, tip gitrepo.Hash, paths ...string) error {
	if tip == tx.tip || tx.tip.IsZero() {
		return nil
	}
	for _, p := range paths {
		then, err := s.repo.FileAt(tx.tip, p)
		if err != nil {
			return err
		}
		now, err := s.repo.FileAt(tip, p)
		if err != nil {
			return err
		}
		if string(then) != string(now) {
			return fmt.Errorf("%w: %s was changed by a commit made while this write worked (%s, by hand?): nothing was written: run the command again on top of it", ErrConflict, p, tip)
		}
	}
	return nil
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
// current heads) and the command line with secrets redacted; an id
// already set (AppendOptions.ID) stays. It returns
// the time the id carries.
func stamp(ev *metav1.Event, actor *metav1.Actor, addr projects.Address, head *fold.Head, now time.Time) time.Time {
	ev.Format = record.FormatVersion
	if ev.Id == "" {
		ev.Id = record.NewID(now)
	}
	idTime, _ := record.IDTime(ev.Id)
	ev.Time = timestamppb.New(idTime)
	ev.Address = &metav1.Address{Project: addr.Project, Env: addr.Env, App: addr.App}
	ev.Actor = proto.Clone(actor).(*metav1.Actor)
	ev.Parents = head.HeadIDs()
	ev.Command = redactCommand(ev.Command)
	return idTime
}

// redactCommand is the command line an event may record: an abra line
// redacted by abra's own grammar (abra.Redact), meta's own lines and any
// other by record.RedactCommand. A line that is not meta's is an abra line
// from its first word that runs abra on, so that `sudo abra ...` is one
// too.
func redactCommand(argv []string) []string {
	if len(argv) > 0 && filepath.Base(argv[0]) != "meta" {
		for i := range argv {
			if out, isAbra := abra.Redact(argv[i:]); isAbra {
				return append(record.RedactCommand(argv[:i]), out...)
			}
		}
	}
	return record.RedactCommand(argv)
}

// commitMessage is one readable line, then trailers git tools can parse.
func commitMessage(ev *metav1.Event) string {
	var subject strings.Builder
	// A recipe's log is named for its recipe (and channel), not the
	// directory it lies in: "release nextcloud 1.1.0", "promote
	// nextcloud/stable 1.1.0".
	name := ev.GetAddress().GetApp()
	if a := record.Address(ev); a.IsReleases() {
		name = a.Recipe()
	} else if a.IsChannel() {
		name = a.Recipe() + "/" + a.Channel()
	}
	subject.WriteString(record.KindName(ev.GetKind()) + " " + name)
	switch {
	case ev.GetFollow() != nil:
		subject.WriteString(" " + ev.GetRecipe() + "/" + ev.GetFollow().GetChannel())
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

// quarantined says the integrity state finds commit breaks the log.
func (s *Store) quarantined(commit gitrepo.Hash) bool {
	st, err := s.stateAt(commit)
	if err != nil {
		return true
	}
	_, found := st.Finding(commit.String())
	return found
}
