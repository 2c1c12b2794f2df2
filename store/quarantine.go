package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
)

// The log's integrity state (see package integrity) is derived from
// history and kept in .git/meta: integrity.json holds it at the branch tip,
// integrity-remote.json at the remote's tip as the last sync took it in.
// A state is walked forward commit by commit as the tip moves; when the tip
// is no descendant of the state's commit (a sync replayed local commits on
// top of the remote's), the walk starts from the remote's state instead,
// and only when neither is an ancestor (a force-push, a first open) is all
// of history walked again. Acknowledged findings are listed in
// .git/meta/acknowledged, one commit id a line: the operator's, so never
// rebuilt.

func (s *Store) integrityPath() string { return s.metaPath("integrity.json") }
func (s *Store) remoteStatePath() string {
	return s.metaPath("integrity-remote.json")
}
func (s *Store) ackPath() string { return s.metaPath("acknowledged") }

// stateAt is the integrity state at commit, the branch tip for every read
// and write: what the tip's tree holds that is not to be folded, and what
// history holds that the tree no longer does.
func (s *Store) stateAt(commit gitrepo.Hash) (*integrity.State, error) {
	return s.integrityAt(context.Background(), commit)
}

// integrityAt is the integrity state checked up to tip (see above), and
// from then on the one reads use.
//
// A state once published (s.integ) is never changed: reads in other
// goroutines (the hub's HTTP API beside its catch-up) hold it while a
// change makes a new one, under s.imu.
func (s *Store) integrityAt(ctx context.Context, tip gitrepo.Hash) (*integrity.State, error) {
	s.imu.Lock()
	defer s.imu.Unlock()
	return s.integrityAtLocked(ctx, tip)
}

func (s *Store) integrityAtLocked(ctx context.Context, tip gitrepo.Hash) (*integrity.State, error) {
	if s.integ != nil && s.integ.Checked == tip.String() {
		return s.integ, nil
	}
	if before, ok := s.before[tip.String()]; ok {
		// The branch went back to where this process saw it (a write
		// taken back): the state there is known.
		s.publish(before)
		return before, nil
	}
	local, remote := loadState(s.integrityPath()), loadState(s.remoteStatePath())
	candidates := []*integrity.State{local, remote}
	if local == nil && remote == nil {
		// A first read (a plain clone) or a state thrown away: the one
		// the remote published spares walking all of history.
		if d := s.published(ctx, tip, nil); d != nil {
			candidates = append(candidates, d.state.Clone())
		}
	}
	st, err := s.checkFrom(ctx, tip, candidates...)
	if err != nil {
		return nil, err
	}
	s.publish(st)
	return st, nil
}

// checkFrom is the state at tip, walked from the first candidate whose
// commit is tip or an ancestor of it; from scratch when none is.
func (s *Store) checkFrom(ctx context.Context, tip gitrepo.Hash, candidates ...*integrity.State) (*integrity.State, error) {
	branch, _ := s.repo.Branch()
	usable := candidates[:0:0]
	for _, c := range candidates {
		if c != nil && c.Checked != "" && c.Branch == branch {
			if c.Checked == tip.String() {
				return c, nil
			}
			usable = append(usable, c)
		}
	}
	// A few commits behind tip is the common case, told without a git;
	// only when no candidate is, git is asked of each.
	var from *integrity.State
	for _, c := range usable {
		if s.repo.LinearAncestor(gitrepo.NewHash(c.Checked), tip) {
			from = c
			break
		}
	}
	for _, c := range usable {
		if from != nil {
			break
		}
		if ok, err := s.repo.IsAncestor(ctx, gitrepo.NewHash(c.Checked), tip); err == nil && ok {
			from = c
		}
	}
	contents := from != nil
	if from == nil {
		// All of history to walk: the candidates' records were read
		// before, the rest the reads will read.
		from = integrity.New()
		for _, c := range candidates {
			if c != nil && c.Checked != "" {
				from = c
				break
			}
		}
		contents = from.Checked != ""
	}
	if tip.IsZero() {
		return integrity.New(), nil
	}
	var onCommit func()
	if s.OnCheck != nil {
		n := 0
		s.OnCheck(0, false)
		defer func() { s.OnCheck(n, true) }()
		onCommit = func() { n++; s.OnCheck(n, false) }
	}
	if err := from.Check(ctx, s.repo, branch, tip, contents, onCommit); err != nil {
		return nil, fmt.Errorf("check the log's history: %w", err)
	}
	return from, nil
}

// checkpointRemote keeps the state at the remote's tip, which a sync just
// took in: where the next sync's walk starts from when this clone's own
// commits are replayed on top of the remote's.
func (s *Store) checkpointRemote(ctx context.Context, remote gitrepo.Hash) (*integrity.State, error) {
	st, err := s.checkFrom(ctx, remote, loadState(s.remoteStatePath()), cloneOrNil(s.integ), loadState(s.integrityPath()))
	if err != nil {
		return nil, err
	}
	writeState(s.remoteStatePath(), st)
	return st, nil
}

func cloneOrNil(st *integrity.State) *integrity.State {
	if st == nil {
		return nil
	}
	return st.Clone()
}

// loadState reads a kept state; nil when there is none or it was kept by
// other rules.
func loadState(path string) *integrity.State {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	st := integrity.New()
	if json.Unmarshal(data, st) != nil || st.Version != integrity.Version {
		return nil
	}
	return st
}

// writeState keeps st at path. A state that cannot be written costs a
// walk, so it is not synced.
func writeState(path string, st *integrity.State) {
	data, err := json.Marshal(st)
	if err == nil && os.MkdirAll(filepath.Dir(path), 0o755) == nil {
		atomicfile.WriteUnsynced(afero.NewOsFs(), path, data, 0o644)
	}
}

// publish keeps st as the state at the tip and makes it the one reads use;
// from then on st does not change. The caller holds s.imu.
func (s *Store) publish(st *integrity.State) {
	st.Index()
	writeState(s.integrityPath(), st)
	s.integ = st
}

// advanceIntegrity takes a commit meta made on parent with files into the
// state, without walking history: meta's own commits follow the rules, but
// one may mend what the state holds (an env file or meta.yaml replaced
// after a quarantined change). A state not at parent is left for the next
// read to walk.
func (s *Store) advanceIntegrity(parent, commit gitrepo.Hash, files []gitrepo.File, sig gitrepo.Signature, msg string) {
	s.imu.Lock()
	defer s.imu.Unlock()
	if s.integ == nil || s.integ.Checked != parent.String() {
		return
	}
	changes := make([]gitrepo.Change, 0, len(files))
	for _, f := range files {
		ch := gitrepo.Change{Commit: commit, Path: f.Path, To: gitrepo.BlobID(f.Data)}
		if f.Replace {
			if old, err := s.repo.FileAt(parent, f.Path); err == nil && old != nil {
				ch.From = gitrepo.BlobID(old)
			}
		}
		changes = append(changes, ch)
	}
	if s.before == nil {
		s.before = map[string]*integrity.State{}
	}
	s.before[parent.String()] = s.integ
	info := gitrepo.CommitInfo{ID: commit, Parents: []gitrepo.Hash{parent}, Author: sig.Name + " <" + sig.Email + ">", When: sig.When, Subject: strings.SplitN(msg, "\n", 2)[0]}
	st := s.integ.Clone()
	if err := st.Advance(s.repo, info, parent, changes); err != nil {
		s.integ = nil // walked again by the next read
		return
	}
	// Kept on disk by keepIntegrity once the branch holds commit: a chain
	// not finished must not leave a state for a commit history lacks.
	st.Index()
	s.integ = st
}

// keepIntegrity keeps the state reads use on disk, when it is the one at
// tip: a commitChain's, once finished.
func (s *Store) keepIntegrity(tip gitrepo.Hash) {
	s.imu.Lock()
	defer s.imu.Unlock()
	if s.integ != nil && s.integ.Checked == tip.String() {
		writeState(s.integrityPath(), s.integ)
	}
}

// reject leaves out of every read a record a read found is no valid event,
// quarantining the commit that wrote it.
func (s *Store) reject(tip gitrepo.Hash, path string, blob gitrepo.Hash, why error) {
	info, err := s.repo.Introduced(context.Background(), tip, path, blob)
	if err != nil || info.ID.IsZero() {
		info = gitrepo.CommitInfo{ID: tip}
	}
	s.imu.Lock()
	defer s.imu.Unlock()
	cur, err := s.integrityAtLocked(context.Background(), tip)
	if err != nil {
		return
	}
	st := cur.Clone()
	if st.Reject(path, blob, info, why) {
		s.publish(st)
	}
}

// ErrNotQuarantined: no quarantined commit has the id asked for.
var ErrNotQuarantined = errors.New("no quarantined commit")

// Quarantined is a quarantined commit as this clone sees it. Its JSON keys
// are part of meta's interface (`meta quarantine ls --json`).
type Quarantined struct {
	integrity.Finding
	Acknowledged bool `json:"acknowledged"`
}

// Quarantine lists the log's quarantined commits, oldest first; only those
// not acknowledged unless all is set.
func (s *Store) Quarantine(ctx context.Context, all bool) ([]Quarantined, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	st, err := s.integrityAt(ctx, tip)
	if err != nil {
		return nil, err
	}
	acked := s.acknowledged()
	out := []Quarantined{}
	for _, f := range st.Findings {
		ack := slices.Contains(acked, f.Commit)
		if all || !ack {
			out = append(out, Quarantined{Finding: f, Acknowledged: ack})
		}
	}
	return out, nil
}

// acknowledged lists the commits the operator acknowledged.
func (s *Store) acknowledged() []string {
	data, _ := os.ReadFile(s.ackPath())
	return strings.Fields(string(data))
}

// Acknowledge stops the warnings about quarantined commits (all of them
// when commits is empty) in this clone, and returns those it acknowledged.
// They stay quarantined: what they break is still not read, and `meta
// verify` and `meta quarantine ls --all` still list them.
func (s *Store) Acknowledge(ctx context.Context, commits []string) ([]Quarantined, error) {
	found, err := s.Quarantine(ctx, true)
	if err != nil {
		return nil, err
	}
	acked := s.acknowledged()
	done := []Quarantined{}
	take := func(q Quarantined) {
		if !slices.Contains(acked, q.Commit) {
			acked = append(acked, q.Commit)
			q.Acknowledged = true
			done = append(done, q)
		}
	}
	quarantined := Prefix[Quarantined]{
		What:   "quarantined commit",
		Digits: commitDigits,
		Len:    commitLen,
		ID:     func(q Quarantined) string { return q.Commit },
		Describe: func(q Quarantined) string {
			return fmt.Sprintf("%s  %s  %q", q.Time.UTC().Format(timeLayout), q.Author, q.Subject)
		},
		Missing: func(id string) error {
			return fmt.Errorf("%w %s (`meta quarantine ls --all` lists them)", ErrNotQuarantined, id)
		},
	}
	for _, want := range commits {
		q, err := quarantined.Find(want, found)
		if err != nil {
			return nil, err
		}
		take(q)
	}
	if len(commits) == 0 {
		for _, q := range found {
			take(q)
		}
	}
	if len(done) == 0 {
		return done, nil
	}
	if err := os.MkdirAll(filepath.Dir(s.ackPath()), 0o755); err != nil {
		return nil, fmt.Errorf("acknowledge: %w", err)
	}
	if err := atomicfile.Write(afero.NewOsFs(), s.ackPath(), []byte(strings.Join(acked, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("acknowledge: %w", err)
	}
	return done, nil
}

// AppProblems lists what quarantined commits broke in the app's directory
// at domain (its records and env file), for the app's head: what reads
// leave out or read otherwise than the tip's tree has it.
func (s *Store) AppProblems(ctx context.Context, a projects.Address) ([]Finding, error) {
	all, err := s.Quarantine(ctx, true)
	if err != nil {
		return nil, err
	}
	out := []Finding{}
	prefix := a.Dir() + "/"
	for _, q := range all {
		for _, p := range q.Problems {
			if strings.HasPrefix(p.Path, prefix) {
				out = append(out, Finding{Path: p.Path, Commit: q.Commit, Problem: p.What, Acknowledged: q.Acknowledged})
			}
		}
	}
	return out, nil
}

// HeadReport is an app's head with what quarantined commits broke in its
// directory: what `meta head --json`, `meta ls --json` and the HTTP API
// answer. Its JSON keys are part of meta's interface.
type HeadReport struct {
	*fold.Head
	// Quarantined are what the head leaves out.
	Quarantined []Finding `json:"quarantined"`
}

// Report adds to h what quarantined commits broke in its app's directory,
// with who signed each event it names.
func (s *Store) Report(ctx context.Context, h *fold.Head) (HeadReport, error) {
	problems, err := s.AppProblems(ctx, projects.Address{Project: h.Project, Env: h.Env, App: h.Domain})
	if err != nil {
		return HeadReport{Head: h}, err
	}
	signed, err := s.SignHead(ctx, h)
	if err != nil {
		return HeadReport{Head: h}, err
	}
	return HeadReport{Head: signed, Quarantined: problems}, nil
}
