package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Tx is one change to the log's mutable files (sealed env files and
// meta.yaml) together with the env events that record it. Change hands it
// to its caller with the log freshly pulled and locked, and commits what the
// caller put into it as one commit.
type Tx struct {
	s       *Store
	tip     plumbing.Hash
	cfg     Config
	cfgData []byte
	newCfg  []byte
	envs    []txEnv
	// Message is the commit's subject when the change records more than
	// one event, e.g. "operator rm alice: re-encrypt 3 env files".
	Message string
}

type txEnv struct {
	addr projects.Address
	data []byte
	ev   *metav1.Event
}

// Config is meta.yaml as the remote has it now.
func (tx *Tx) Config() Config { return tx.cfg }

// Place settles which app an env change is for, as Append would.
func (tx *Tx) Place(a *metav1.Address) (projects.Address, error) { return tx.s.placeFor(a) }

// Env returns the app's sealed env file as committed, nil when it has none.
// It refuses when the work tree's copy differs: someone edited it by hand
// and did not commit, and that edit must not vanish silently.
func (tx *Tx) Env(a projects.Address) ([]byte, error) {
	p := projects.EnvPath(a)
	committed, err := tx.s.repo.FileAt(tx.tip, p)
	if err != nil {
		return nil, err
	}
	have, err := tx.s.files.Read(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if string(have) != string(committed) {
		return nil, fmt.Errorf("%w: %s has changes that are not committed (edited with sops by hand?): `git -C %s checkout -- %s` drops them, or record them with `meta env import %s <(sops decrypt %s)`", ErrConflict, p, tx.s.root, p, a.App, p)
	}
	return committed, nil
}

// Envs lists the apps that have a sealed env file.
func (tx *Tx) Envs() ([]projects.Address, error) { return tx.s.envApps() }

// PutEnv writes the app's sealed env file and records ev, an env event the
// caller filled with the change; PutEnv sets the digest.
func (tx *Tx) PutEnv(a projects.Address, data []byte, ev *metav1.Event) {
	ev = proto.Clone(ev).(*metav1.Event)
	ev.Kind = metav1.Kind_KIND_ENV
	ev.EnvDigest = sealed.Digest(data)
	tx.envs = append(tx.envs, txEnv{addr: a, data: data, ev: ev})
}

// PutConfig replaces the operators and access rules in meta.yaml.
func (tx *Tx) PutConfig(c Config) error {
	data, err := c.Rewrite(tx.cfgData)
	if err != nil {
		return err
	}
	tx.newCfg, tx.cfg = data, c
	return nil
}

// Changed is what Change committed.
type Changed struct {
	Events []*metav1.Event
	Commit string
	Pushed bool
	// Warnings are problems that did not stop the change.
	Warnings []string
}

// Change runs fn with the log locked and pulled, then commits what fn put
// into the Tx as one commit and pushes it. fn returning an error, or
// putting nothing, writes nothing. When another operator pushed a change to
// the same files meanwhile, the commit is taken back and Change returns
// ErrConflict: the later writer is told, never silently wins.
func (s *Store) Change(ctx context.Context, actor *metav1.Actor, now time.Time, opts AppendOptions, fn func(*Tx) error) (*Changed, error) {
	if actor == nil || strings.TrimSpace(actor.GetName()) == "" {
		return nil, fmt.Errorf("%w: no operator", record.ErrInvalid)
	}
	release, online, err := s.lockAndPull(ctx, opts.Offline, "to change it here and push it later")
	if err != nil {
		return nil, err
	}
	defer release()
	tx := &Tx{s: s}
	if tx.tip, err = s.repo.Head(); err != nil {
		return nil, err
	}
	// meta.yaml may have come in with the pull.
	if tx.cfgData, err = s.files.Read(ConfigFile); err != nil {
		return nil, err
	}
	if tx.cfg, err = ParseConfig(tx.cfgData); err != nil {
		return nil, err
	}
	s.cfg = tx.cfg
	if err := fn(tx); err != nil {
		return nil, err
	}
	if len(tx.envs) == 0 && tx.newCfg == nil {
		return nil, sealed.ErrNoChange
	}
	out, err := s.commitTx(tx, actor, now, opts)
	if err != nil {
		return nil, err
	}
	if online {
		err := s.push(ctx)
		switch {
		case err == nil:
			out.Pushed = true
		case errors.Is(err, ErrConflict):
			// Someone pushed a change to the same env file or meta.yaml
			// first: take this one back rather than overwrite theirs.
			if uerr := s.undo(plumbing.NewHash(out.Commit), tx.tip); uerr != nil {
				return nil, fmt.Errorf("%w; and taking this change back failed: %v", err, uerr)
			}
			return nil, fmt.Errorf("%w: another operator changed the same file and pushed first; nothing was written, run the command again on top of their change", ErrConflict)
		default:
			out.Warnings = append(out.Warnings, fmt.Sprintf("committed here but not pushed: %v; `meta sync` pushes it", err))
		}
	}
	return out, nil
}

// commitTx writes tx's files and events and commits them. The caller holds
// the lock.
func (s *Store) commitTx(tx *Tx, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Changed, error) {
	var files []gitrepo.File
	var events []*metav1.Event
	batch := s.currentBatch()
	for i, e := range tx.envs {
		head, _, err := s.head(e.addr)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		ev := e.ev
		if err := checkLease(head, ev, e.addr.App, actor, now, opts); err != nil {
			return nil, err
		}
		batch.mark(ev)
		// A millisecond apart, so the ids sort in the order of the change.
		stamp(ev, actor, e.addr, head, now.Add(time.Duration(i)*time.Millisecond))
		ev.Outcome = metav1.Outcome_OUTCOME_SUCCEEDED
		if err := record.Validate(ev); err != nil {
			return nil, err
		}
		data, err := record.Marshal(ev)
		if err != nil {
			return nil, err
		}
		rp := record.Path(ev)
		events = append(events, ev)
		files = append(files, gitrepo.File{Path: rp, Data: data}, gitrepo.File{Path: projects.EnvPath(e.addr), Data: e.data, Replace: true})
	}
	if tx.newCfg != nil {
		files = append(files, gitrepo.File{Path: ConfigFile, Data: tx.newCfg, Replace: true})
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	if err := s.setPendingChange(paths); err != nil {
		return nil, err
	}
	restore := func() {
		for _, f := range files {
			s.restoreFile(tx.tip, f.Path)
		}
		s.clearPending()
	}
	for _, f := range files {
		if err := s.files.Put(f.Path, f.Data, 0o644); err != nil {
			restore()
			return nil, err
		}
	}
	msg := ""
	if len(events) == 1 && tx.newCfg == nil {
		msg = commitMessage(events[0])
	} else {
		msg = changeMessage(tx.Message, events, actor)
	}
	sig := gitrepo.Signature{Name: actor.GetName(), Email: actor.GetEmail(), When: now}
	commit, err := s.repo.Commit(tx.tip, files, msg, sig)
	if commit.IsZero() {
		restore()
		return nil, err
	}
	out := &Changed{Events: events, Commit: commit.String()}
	if err != nil {
		out.Warnings = append(out.Warnings, err.Error())
	}
	s.clearPending()
	if tx.newCfg != nil {
		s.cfg = tx.cfg
	}
	return out, nil
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

// restoreFile puts path back as commit holds it (or removes it when the
// commit does not hold it): the undo of a change that was not committed.
func (s *Store) restoreFile(commit plumbing.Hash, path string) error {
	if _, err := projects.ParseRecordPath(path); err == nil {
		return s.files.Remove(path)
	}
	data, err := s.repo.FileAt(commit, path)
	if err != nil {
		return err
	}
	if data == nil {
		return s.files.Delete(path)
	}
	return s.files.Put(path, data, 0o644)
}

// undo takes back the commit made at tip on top of prev, which the remote
// refused: the branch, the index and the work tree return to prev.
func (s *Store) undo(tip, prev plumbing.Hash) error {
	changes, err := s.repo.Diff(tip, prev)
	if err != nil {
		return err
	}
	sig := gitrepo.Signature{Name: "meta", When: time.Now()}
	if err := s.repo.MoveBranch(tip, prev, sig, "meta: take back a change the remote refused"); err != nil {
		return err
	}
	return s.materialize(changes)
}

// envApps lists the apps whose directory holds a sealed env file.
func (s *Store) envApps() ([]projects.Address, error) {
	apps, err := s.files.Apps()
	if err != nil {
		return nil, err
	}
	var out []projects.Address
	for _, a := range apps {
		// A stat, not a read: callers read the files they need.
		if fi, err := s.files.fs.Stat(projects.EnvPath(a)); err == nil && !fi.IsDir() {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// EnvFile returns the app's sealed env file as it stands in this clone, and
// where the app lives; ErrNoEnv when it has none.
func (s *Store) EnvFile(domain string) ([]byte, projects.Address, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, projects.Address{}, err
	}
	a, err := s.Locate(domain)
	if err != nil {
		return nil, projects.Address{}, err
	}
	data, err := s.files.Read(projects.EnvPath(a))
	if errors.Is(err, os.ErrNotExist) {
		return nil, a, fmt.Errorf("%w: %s has none in the log (meta env import %s FILE adds one)", ErrNoEnv, domain, domain)
	}
	return data, a, err
}

// EnvAt returns the sealed env file an event ran with: the version whose
// digest the event records, found in the history of the app's env file.
func (s *Store) EnvAt(ctx context.Context, a projects.Address, digest string) ([]byte, error) {
	if digest == "" {
		return nil, fmt.Errorf("%w: the event records no env digest", ErrNoEnv)
	}
	p := projects.EnvPath(a)
	if data, err := s.files.Read(p); err == nil && sealed.Digest(data) == digest {
		return data, nil
	}
	var found []byte
	err := s.repo.Versions(ctx, p, func(data []byte) bool {
		if sealed.Digest(data) == digest {
			found = data
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no version of %s has digest %s", ErrNoEnv, p, digest)
	}
	return found, nil
}

// EnvFileRef is one app's sealed env file as this clone has it.
type EnvFileRef struct {
	Address projects.Address
	Data    []byte
}

// EnvFiles lists every app's sealed env file.
func (s *Store) EnvFiles() ([]EnvFileRef, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, err
	}
	apps, err := s.envApps()
	if err != nil {
		return nil, err
	}
	out := make([]EnvFileRef, 0, len(apps))
	for _, a := range apps {
		data, err := s.files.Read(projects.EnvPath(a))
		if err != nil {
			return nil, err
		}
		out = append(out, EnvFileRef{Address: a, Data: data})
	}
	return out, nil
}
