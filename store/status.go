package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// Unpushed is a local event the remote does not have yet.
type Unpushed struct {
	EventID string `json:"event_id"`
	Domain  string `json:"domain"`
	Path    string `json:"path"`
	Commit  string `json:"commit"`
}

// Status is how a clone stands with its remote and its history: `meta
// status`. Its JSON keys are part of meta's interface.
type Status struct {
	Remote string `json:"remote"`
	// Branch is the log's branch, as meta.yaml records it.
	Branch string `json:"branch"`
	// LastSync is when a fetch last succeeded; zero if never.
	LastSync time.Time `json:"last_sync"`
	// LastFailure is when a sync last failed and Failure what it said,
	// while no sync succeeded since; zero and empty otherwise.
	LastFailure time.Time `json:"last_failure"`
	Failure     string    `json:"failure"`
	// FailureFix is the command that gets past that failure.
	FailureFix string `json:"failure_fix"`
	// Unpushed are local events the remote does not have.
	Unpushed []Unpushed `json:"unpushed"`
	// Quarantined are the commits that break the log's rules and are not
	// acknowledged; Unsendable those of them this clone has not pushed,
	// which stop its pushes until `meta repair`.
	Quarantined []Quarantined `json:"quarantined"`
	Unsendable  []string      `json:"unsendable"`
	// SetAside are local commits a sync set aside.
	SetAside []Aside `json:"set_aside"`
	// Interrupted says a killed meta left a write or sync half done, which
	// the next command that takes the log's lock finishes.
	Interrupted bool `json:"interrupted"`
	// OtherChanges are files in the repository that meta does not manage
	// and that differ from the last commit.
	OtherChanges []string `json:"other_changes"`
}

// Status reports the remote, the last sync and the last failure, unpushed
// events, quarantined commits, what is set aside or interrupted, and files
// meta does not manage. It changes nothing.
func (s *Store) Status(ctx context.Context) (*Status, error) {
	unpushed, err := s.Unpushed(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	quarantined, err := s.Quarantine(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	unsendable := []string{}
	if tip, err := s.repo.Head(); err == nil {
		if st, err := s.stateAt(tip); err == nil {
			bad, err := s.unpushedFindings(ctx, st)
			if err != nil {
				return nil, fmt.Errorf("status: %w", err)
			}
			for _, f := range bad {
				unsendable = append(unsendable, f.Commit)
			}
		}
	}
	aside, err := s.Asides(ctx)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	others := s.repo.Others(projects.Root)
	if others == nil {
		others = []string{}
	}
	times := s.state.load()
	st := &Status{
		Remote:       gitrepo.ShownURL(s.repo.RemoteURL(ctx)),
		Branch:       s.Config().Branch,
		LastSync:     times.LastSync,
		Unpushed:     unpushed,
		Quarantined:  quarantined,
		Unsendable:   unsendable,
		SetAside:     aside,
		Interrupted:  s.journal.pending(),
		OtherChanges: others,
	}
	if times.LastFailure.After(times.LastSync) {
		st.LastFailure, st.Failure, st.FailureFix = times.LastFailure, times.Failure, times.FailureFix
		if st.FailureFix == "" {
			st.FailureFix = "meta sync"
		}
	}
	if st.Branch == "" {
		st.Branch, _ = s.repo.Branch()
	}
	return st, nil
}

// Reach asks the remote, now, whether it answers and has the log's branch:
// nil when it does; an error with all git said when not.
func (s *Store) Reach(ctx context.Context) error {
	branch, err := s.repo.Branch()
	if err != nil {
		return err
	}
	tip, err := s.repo.LsRemote(ctx, branch)
	if err != nil {
		return err
	}
	if tip.IsZero() {
		return fmt.Errorf("the remote has no branch %s yet: `meta sync` pushes it", branch)
	}
	return nil
}

// Unpushed lists local events the remote does not have yet, oldest first,
// for one app (domain) or all (""). Without a remote there are none: the
// log is not shared.
func (s *Store) Unpushed(ctx context.Context, domain string) ([]Unpushed, error) {
	out := []Unpushed{}
	if !s.HasRemote(ctx) {
		return out, nil
	}
	remote, err := s.repo.RemoteTip()
	if err != nil {
		return nil, err
	}
	local, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	all, err := s.unpushedAll(ctx, remote, local)
	if err != nil {
		return nil, err
	}
	for _, u := range all {
		if domain == "" || u.Domain == domain {
			out = append(out, u)
		}
	}
	return out, nil
}

// unpushedMemo is this clone's last answer to what local holds that
// remote lacks, kept in .git/meta/unpushed.json: every command showing a
// head asks, and diffing each unpushed commit again costs a millisecond or
// more a commit in a big log (18 offline appends made `meta head` 100 ms
// slower at a million events). Keyed by both tips, it is true as long as
// they are; a local tip moved on by commits of one parent each costs only
// those.
type unpushedMemo struct {
	Remote string     `json:"remote"`
	Local  string     `json:"local"`
	Events []Unpushed `json:"events"`
}

func (s *Store) unpushedPath() string { return s.metaPath("unpushed.json") }

// unpushedAll is what local adds to remote, for every app.
func (s *Store) unpushedAll(ctx context.Context, remote, local gitrepo.Hash) ([]Unpushed, error) {
	var memo unpushedMemo
	if data, err := os.ReadFile(s.unpushedPath()); err == nil && json.Unmarshal(data, &memo) != nil {
		memo = unpushedMemo{}
	}
	if memo.Remote == remote.String() && memo.Local == local.String() {
		return memo.Events, nil
	}
	var all []Unpushed
	newer, ok := []gitrepo.Hash(nil), false
	if memo.Remote == remote.String() && memo.Local != "" {
		// Only on a memo whose tip descends from the remote's: the
		// commits after it are then none of the remote's. One written
		// while the branch was behind (a `git fetch` by hand, a reset)
		// would take the remote's commits the branch catches up through
		// as this clone's, and list a record the remote purged since.
		from := gitrepo.NewHash(memo.Local)
		if remote.IsZero() || s.repo.LinearAncestor(remote, from) {
			newer, ok = s.repo.Linear(from, local)
		}
	}
	if ok {
		all = memo.Events
	} else {
		var err error
		if newer, err = s.repo.Commits(ctx, remote, local); err != nil {
			return nil, err
		}
	}
	added, err := s.added(newer, remote, "")
	if err != nil {
		return nil, err
	}
	all = append(slices.Clip(all), added...)
	if data, err := json.Marshal(unpushedMemo{Remote: remote.String(), Local: local.String(), Events: all}); err == nil {
		// Not synced: a memo lost costs the diffs again.
		atomicfile.WriteUnsynced(afero.NewOsFs(), s.unpushedPath(), data, 0o644)
	}
	return all, nil
}

// added lists the events commits (from..something, oldest first) add that
// from lacks, for one app (domain) or all (""): what a push would give the
// remote at from, or what a fetch brought to a clone at from.
func (s *Store) added(commits []gitrepo.Hash, from gitrepo.Hash, domain string) ([]Unpushed, error) {
	out := []Unpushed{}
	err := s.eachAddedRecord(commits, func(c gitrepo.Hash, path string, rec projects.Record) error {
		if domain != "" && rec.Address.App != domain {
			return nil
		}
		if has, err := s.repo.Has(from, path); err != nil {
			return err
		} else if has {
			return nil // deleted and added again: from has it
		}
		out = append(out, Unpushed{EventID: rec.ID, Domain: rec.Address.App, Path: path, Commit: c.String()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachAddedRecord calls fn, commit by commit in the order given, with each
// record file a commit adds against its first parent: a file new at its
// path, not one it changes or deletes. Other files are passed over. The
// first error, from git or from fn, ends the walk.
func (s *Store) eachAddedRecord(commits []gitrepo.Hash, fn func(c gitrepo.Hash, path string, rec projects.Record) error) error {
	for _, c := range commits {
		parent, err := s.repo.Parent(c)
		if err != nil {
			return err
		}
		changes, err := s.repo.Diff(parent, c)
		if err != nil {
			return err
		}
		for _, ch := range changes {
			if !ch.From.IsZero() || ch.To.IsZero() {
				continue
			}
			rec, err := projects.ParseRecordPath(ch.Path)
			if err != nil {
				continue
			}
			if err := fn(c, ch.Path, rec); err != nil {
				return err
			}
		}
	}
	return nil
}
