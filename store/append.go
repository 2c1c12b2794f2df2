package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// AppendOptions says how an append deals with the remote.
type AppendOptions struct {
	// Offline skips the fetch before and the push after: the event stays
	// local until a later sync.
	Offline bool
	// Expect, when set, is the version (or event id) the app's head must
	// have after the fetch; anything else refuses the append.
	Expect string
	// Force goes ahead despite another operator's lease on the app; the
	// event records the lease it broke.
	Force bool
	// unless, when it says so of the app's head after the pull, stops the
	// append with errUnchanged.
	unless func(*fold.Head) bool
}

// Appended is what Append did.
type Appended struct {
	Event  *metav1.Event
	Path   string
	Commit string
	// Pushed says the event reached the remote.
	Pushed bool
	// Warnings are problems that did not stop the append, such as files
	// meta left uncommitted.
	Warnings []string
}

// maxRaces bounds how often Append rebuilds its commit because a git
// process outside meta moved the branch meanwhile.
const maxRaces = 5

// Append adds ev to the log as a new record and commits it. The caller sets
// what happened (kind, outcome, body, versions, message, command) and the
// app's domain in ev.Address.App; project and env may be left empty for an
// app the log knows, or default to meta.yaml's. Append sets the id, time,
// format and parents (the app's current heads), and writes nothing when
// anything is wrong. With a remote, it first fetches and integrates (and
// refuses when it cannot), then pushes; a failed push leaves the event
// appended locally, with a warning.
func (s *Store) Append(ctx context.Context, ev *metav1.Event, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	domain := ev.GetAddress().GetApp()
	wrap := func(err error) error { return fmt.Errorf("append %s: %w", domain, err) }
	if actor == nil || strings.TrimSpace(actor.GetName()) == "" {
		return nil, wrap(fmt.Errorf("%w: no operator", record.ErrInvalid))
	}
	if err := projects.ValidateApp(domain); err != nil {
		return nil, wrap(err)
	}
	if ev.GetKind() == metav1.Kind_KIND_ENV {
		return nil, wrap(fmt.Errorf("%w: env events are written by the meta env commands, with the env file they describe", record.ErrInvalid))
	}
	// A lease counts only if the remote took it before anyone else's.
	exclusive := ev.GetKind() == metav1.Kind_KIND_LOCK || ev.GetKind() == metav1.Kind_KIND_UNLOCK
	release, online, err := s.lockAndPull(ctx, opts.Offline, "to record the event here and push it later")
	if err != nil {
		return nil, wrap(err)
	}
	defer release()
	addr, err := s.placeFor(ev.GetAddress())
	if err != nil {
		return nil, wrap(err)
	}
	if opts.Expect != "" {
		if err := s.expect(addr, opts.Expect); err != nil {
			return nil, wrap(err)
		}
	}
	if opts.unless != nil {
		if h, _, err := s.head(addr); err == nil && opts.unless(h) {
			return nil, errUnchanged
		}
	}
	if exclusive && online {
		out, err := s.appendExclusive(ctx, ev, actor, addr, now, opts)
		if err != nil {
			return nil, wrap(err)
		}
		return out, nil
	}
	out, err := s.appendRetrying(ev, actor, addr, now, opts)
	if err != nil {
		return nil, wrap(err)
	}
	if online {
		if err := s.push(ctx); err != nil {
			out.Warnings = append(out.Warnings, fmt.Sprintf("appended here but not pushed: %v; `meta sync` pushes it", err))
		} else {
			out.Pushed = true
		}
	}
	return out, nil
}

// appendRetrying appends, building the commit again when a git process
// outside meta moved the branch meanwhile.
func (s *Store) appendRetrying(ev *metav1.Event, actor *metav1.Actor, addr projects.Address, now time.Time, opts AppendOptions) (*Appended, error) {
	for attempt := 1; ; attempt++ {
		out, err := s.appendOnce(ev, actor, addr, now, opts)
		if errors.Is(err, gitrepo.ErrRaced) && attempt < maxRaces {
			continue
		}
		return out, err
	}
}

// appendExclusive appends an event that must reach the remote before any
// other operator's, or not be written at all: when the remote has moved
// on, the commit is taken back, the remote's events come in, and the
// append is decided again on top of them (where another lease now refuses
// it). The caller holds the lock and has pulled.
func (s *Store) appendExclusive(ctx context.Context, ev *metav1.Event, actor *metav1.Actor, addr projects.Address, now time.Time, opts AppendOptions) (*Appended, error) {
	for attempt := 1; ; attempt++ {
		tip, err := s.repo.Head()
		if err != nil {
			return nil, err
		}
		out, err := s.appendRetrying(ev, actor, addr, now, opts)
		if err != nil {
			return nil, err
		}
		perr := s.pushOnce(ctx)
		if perr == nil {
			out.Pushed = true
			return out, nil
		}
		if uerr := s.undo(plumbing.NewHash(out.Commit), tip); uerr != nil {
			return nil, fmt.Errorf("%w: %w; and taking the event back failed: %v", ErrSync, perr, uerr)
		}
		if !errors.Is(perr, gitrepo.ErrRejected) || attempt == maxPushes {
			return nil, fmt.Errorf("%w: %w; nothing was written: a %s must reach the remote to count (pass --offline to take it in this clone only)", ErrSync, perr, record.KindName(ev.GetKind()))
		}
		time.Sleep(backoff(attempt))
		if err := s.pull(ctx); err != nil {
			return nil, err
		}
	}
}

// expect refuses unless the app's head is at the version or event id the
// operator expects.
func (s *Store) expect(a projects.Address, want string) error {
	h, _, err := s.head(a)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if h != nil {
		if projects.ValidateID(want) == nil {
			for _, id := range append(h.HeadIDs(), h.EventID) {
				if id == want {
					return nil
				}
			}
		} else if h.Version == want || h.ChaosVersion != "" && h.ChaosVersion == want {
			return nil
		}
	}
	have := "no events"
	if h != nil {
		have = fmt.Sprintf("%s %s (last event %s, %s by %s)", h.State, orDash(h.Version), h.EventID, h.Kind, h.Operator)
		if h.Forked {
			have += ", forked"
		}
	}
	return fmt.Errorf("%w: you expected %s, the log says %s", ErrUnexpected, want, have)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (s *Store) appendOnce(in *metav1.Event, actor *metav1.Actor, addr projects.Address, now time.Time, opts AppendOptions) (*Appended, error) {
	head, paths, err := s.head(addr)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	ev := proto.Clone(in).(*metav1.Event)
	if err := checkLease(head, ev, addr.App, actor, now, opts); err != nil {
		return nil, err
	}
	s.currentBatch().mark(ev)
	idTime := stamp(ev, actor, addr, head, now)
	if l := ev.GetLock(); l != nil {
		// The lease runs from the event's own time, which a clock step
		// back may have put after now.
		l.Expires = timestamppb.New(idTime.Add(l.GetExpires().AsTime().Sub(now)))
	}
	if record.IsDeployKind(ev.GetKind()) && ev.GetEnvDigest() == "" {
		// The env file in force now is what this deploy ran with.
		if data, err := s.files.Read(projects.EnvPath(addr)); err == nil {
			ev.EnvDigest = sealed.Digest(data)
		}
	}
	if rb := ev.GetRollback(); rb != nil && rb.GetFromVersion() == "" && head != nil {
		rb.FromVersion = head.Version
	}
	if err := record.Validate(ev); err != nil {
		return nil, err
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	// The pending note lets the next meta command finish or undo this
	// append if the process dies half way.
	if err := s.setPending(record.Path(ev)); err != nil {
		return nil, err
	}
	p, data, err := s.files.Write(ev)
	if err != nil {
		s.clearPending()
		return nil, err
	}
	actorSig := gitrepo.Signature{Name: actor.GetName(), Email: actor.GetEmail(), When: idTime}
	commit, err := s.repo.Commit(tip, []gitrepo.File{{Path: p, Data: data}}, commitMessage(ev), actorSig)
	if commit.IsZero() {
		s.files.Remove(p)
		s.clearPending()
		return nil, err
	}
	out := &Appended{Event: ev, Path: p, Commit: commit.String()}
	if err != nil { // committed; a later step (ref sync, index) failed
		out.Warnings = append(out.Warnings, err.Error())
	}
	s.clearPending()
	// The new event sits on every head, so the next head is one fold step
	// away: memoise it now and the next read needs no refold.
	if next := fold.Next(head, ev); next != nil {
		i := sort.SearchStrings(paths, p)
		paths = append(paths[:i], append([]string{p}, paths[i:]...)...)
		s.cache.StoreHead(addr, HeadKey(paths), next)
	}
	for _, o := range s.repo.Others(projects.Root) {
		out.Warnings = append(out.Warnings, "not committed by meta: "+o)
	}
	return out, nil
}

// lockAndPull is how every write begins: take the log's lock, finish what
// a killed meta left half done, and, unless offline or without a remote,
// fetch and integrate. hint tells the operator how to write anyway when the
// remote cannot be reached. The caller must call release.
func (s *Store) lockAndPull(ctx context.Context, offline bool, hint string) (release func(), online bool, err error) {
	release, err = lock(s.gitDir)
	if err != nil {
		return nil, false, err
	}
	if err := s.repairAll(); err != nil {
		release()
		return nil, false, err
	}
	online = !offline && s.HasRemote(ctx)
	if online {
		if err := s.pull(ctx); err != nil {
			release()
			if errors.Is(err, ErrSync) {
				err = fmt.Errorf("%w; %s, pass --offline", err, hint)
			}
			return nil, false, err
		}
	}
	return release, online, nil
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

// placeFor settles which project/env an event for a.App goes to: where the
// app already lives, else what the caller asked for, else meta.yaml's
// defaults.
func (s *Store) placeFor(a *metav1.Address) (projects.Address, error) {
	want := projects.Address{Project: a.GetProject(), Env: a.GetEnv(), App: a.GetApp()}
	if want.Project != "" {
		if err := projects.ValidateProject(want.Project); err != nil {
			return projects.Address{}, err
		}
	}
	if want.Env != "" {
		if err := projects.ValidateEnv(want.Env); err != nil {
			return projects.Address{}, err
		}
	}
	found, err := s.files.Find(want.App)
	if err != nil {
		return projects.Address{}, err
	}
	found = s.dropMovedAway(found, want)
	switch {
	case len(found) > 1:
		for _, a := range found {
			if a.Project == want.Project && a.Env == want.Env {
				return a, nil // the caller chose one
			}
		}
		return projects.Address{}, fmt.Errorf("%w; pass --project and --env to choose", ambiguous(want.App, found))
	case len(found) == 1:
		have := found[0]
		if want.Project != "" && want.Project != have.Project || want.Env != "" && want.Env != have.Env {
			return projects.Address{}, fmt.Errorf("%w: %s has its events under %s, not %s/%s", ErrMoved, want.App, have, orAny(want.Project), orAny(want.Env))
		}
		return have, nil
	}
	if want.Project == "" {
		want.Project = s.cfg.Project
	}
	if want.Env == "" {
		want.Env = s.cfg.Env
	}
	if want.Project == "" || want.Env == "" {
		return projects.Address{}, fmt.Errorf("%w: %s has no events yet; pass --project and --env, or set project and env in %s", ErrNeedAddress, want.App, ConfigFile)
	}
	return want, want.Validate()
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

func ambiguous(domain string, found []projects.Address) error {
	names := make([]string, len(found))
	for i, a := range found {
		names[i] = a.String()
	}
	return fmt.Errorf("%w: %s has events under %s", ErrAmbiguous, domain, strings.Join(names, " and "))
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

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (s *Store) pendingPath() string { return filepath.Join(s.gitDir, "meta", "pending") }

func (s *Store) setPending(recordPath string) error {
	if err := writeFileSynced(s.pendingPath(), []byte(recordPath+"\n")); err != nil {
		return fmt.Errorf("note pending append: %w", err)
	}
	return nil
}

func (s *Store) clearPending() { os.Remove(s.pendingPath()) }

func (s *Store) setPendingChange(paths []string) error {
	if err := writeFileSynced(s.pendingPath(), []byte(strings.Join(paths, "\n")+"\n")); err != nil {
		return fmt.Errorf("note pending change: %w", err)
	}
	return nil
}

// repair finishes an append or change a killed meta left half done. The
// note lists the files it was writing; its records say whether it got as
// far as the commit. If the branch holds them, every file stays (and is put
// back in the index); if not, nothing was reported written, so records are
// removed and other files restored as the branch has them. The caller holds
// the lock.
func (s *Store) repair() error {
	data, err := os.ReadFile(s.pendingPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("repair interrupted append: %w", err)
	}
	var paths []string
	witness := ""
	for _, p := range strings.Fields(string(data)) {
		if _, err := projects.ParseRecordPath(p); err == nil {
			witness = p
		} else if _, err := projects.ParseEnvPath(p); err != nil && p != ConfigFile {
			continue // not ours to act on
		}
		paths = append(paths, p)
	}
	if witness == "" {
		s.clearPending()
		return nil
	}
	tip, err := s.repo.Head()
	if err != nil {
		return fmt.Errorf("repair interrupted append: %w", err)
	}
	committed, err := s.repo.Has(tip, witness)
	if err != nil {
		return fmt.Errorf("repair interrupted append: %w", err)
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
		return fmt.Errorf("repair interrupted append of %s: %w", witness, err)
	}
	s.clearPending()
	return nil
}

// repairIfPending lets readers repair a crashed append or sync before
// reading, so they never show an event that was not committed nor miss one
// that was. It costs two stats when there is nothing to do.
func (s *Store) repairIfPending() error {
	if !fileExists(s.pendingPath()) && !fileExists(s.pendingSyncPath()) {
		return nil
	}
	release, err := lock(s.gitDir)
	if err != nil {
		return err
	}
	defer release()
	return s.repairAll()
}
