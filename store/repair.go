package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// meta never pushes a commit that breaks the log's rules (see package
// integrity): checkUnpushed stops the push and names `meta repair`, which
// takes back what such commits break and keeps everything else.

// checkUnpushed refuses to push when a local commit the remote lacks is
// quarantined.
func (s *Store) checkUnpushed(ctx context.Context) error {
	tip, err := s.repo.Head()
	if err != nil {
		return err
	}
	st, err := s.stateAt(tip)
	if err != nil {
		return err
	}
	bad, err := s.unpushedFindings(ctx, st)
	if err != nil || len(bad) == 0 {
		return err
	}
	var what []string
	for _, f := range bad {
		what = append(what, fmt.Sprintf("commit %s by %s (%q): %s", f.Short(), f.Author, f.Subject, f.Summary()))
	}
	return fmt.Errorf("%w: %s; nothing was pushed: `meta repair` takes back what it breaks, keeping every valid event and every file meta does not manage", ErrBroken, strings.Join(what, "; "))
}

// unpushedFindings are the quarantined commits the remote lacks, oldest
// first; all of them for a log without a remote.
func (s *Store) unpushedFindings(ctx context.Context, st *integrity.State) ([]integrity.Finding, error) {
	if len(st.Findings) == 0 {
		return nil, nil
	}
	remote := gitrepo.ZeroHash
	if s.HasRemote(ctx) {
		var err error
		if remote, err = s.repo.RemoteTip(); err != nil {
			return nil, err
		}
	}
	var out []integrity.Finding
	for _, f := range st.Findings {
		pushed, err := s.repo.IsAncestor(ctx, gitrepo.NewHash(f.Commit), remote)
		if err != nil {
			return nil, err
		}
		if !pushed || remote.IsZero() {
			out = append(out, f)
		}
	}
	return out, nil
}

// Repaired is what Repair did. Its JSON keys are part of meta's interface.
type Repaired struct {
	// Dropped are the changes of unpushed commits taken back.
	Dropped []RepairChange `json:"dropped"`
	// Mended are the files put back as the log's history has them.
	Mended []RepairChange `json:"mended"`
	// SetAside are local commits that collided once the others were taken
	// back (see aside.go).
	SetAside []string `json:"set_aside"`
	// Commit is the tip after the repair; Pushed says it reached the
	// remote.
	Commit string `json:"commit"`
	Pushed bool   `json:"pushed"`
}

// RepairChange is one file a repair changed, and why.
type RepairChange struct {
	Commit  string `json:"commit,omitempty"`
	Path    string `json:"path"`
	Problem string `json:"problem"`
}

// Repair is the way out of a log whose commits break its rules. Commits
// this clone has not pushed are replayed without what they break: a
// record's modification or deletion, a file under projects/ that is no
// valid record, a meta.yaml against its schema, an env file changed without
// its event; every valid event and every file meta does not manage stays.
// Then, for what pushed commits broke, one commit puts the files back as
// reads take them (records as first written, meta.yaml and env files as
// their last valid commit left them, no junk under projects/), so the tree
// says what the log says. Pushed commits stay quarantined: history is
// shared, and `meta verify` keeps naming them. Nothing to repair is
// ErrNoChange.
func (s *Store) Repair(ctx context.Context, actor *metav1.Actor, offline bool) (*Repaired, error) {
	release, err := lock(s.gitDir)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := s.repairAll(); err != nil {
		return nil, err
	}
	online := !offline && s.HasRemote(ctx)
	if online {
		if err := s.pull(ctx); err != nil {
			return nil, fmt.Errorf("repair: %w", err)
		}
	}
	if err := s.checkSigner(s.Config()); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	st, err := s.stateAt(tip)
	if err != nil {
		return nil, err
	}
	out := &Repaired{Dropped: []RepairChange{}, Mended: []RepairChange{}, SetAside: []string{}}
	next, err := s.dropBroken(ctx, tip, st, out)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	if next != tip {
		if st, err = s.integrityAt(ctx, next); err != nil {
			return nil, fmt.Errorf("repair: %w", err)
		}
	}
	if next, err = s.mend(next, st, actor, out); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	if next == tip {
		return nil, ErrNoChange
	}
	if err := s.moveTo(tip, next, "meta: repair"); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	out.Commit = next.String()
	if online {
		if err := s.push(ctx); err != nil {
			return out, fmt.Errorf("repaired here, but not pushed: %w; `meta sync` pushes it", err)
		}
		out.Pushed = true
	}
	return out, nil
}

// dropBroken replays the unpushed commits from the first quarantined one
// on, leaving out the changes the findings name.
func (s *Store) dropBroken(ctx context.Context, tip gitrepo.Hash, st *integrity.State, out *Repaired) (gitrepo.Hash, error) {
	bad, err := s.unpushedFindings(ctx, st)
	if err != nil || len(bad) == 0 {
		return tip, err
	}
	broken := map[string]map[string]string{} // commit -> path -> problem
	for _, f := range bad {
		broken[f.Commit] = map[string]string{}
		for _, p := range f.Problems {
			broken[f.Commit][p.Path] = p.What
		}
	}
	remote := gitrepo.ZeroHash
	if s.HasRemote(ctx) {
		if remote, err = s.repo.RemoteTip(); err != nil {
			return tip, err
		}
	}
	commits, err := s.repo.Commits(ctx, remote, tip)
	if err != nil {
		return tip, err
	}
	first := slices.IndexFunc(commits, func(c gitrepo.Hash) bool { return broken[c.String()] != nil })
	if first < 0 {
		return tip, nil
	}
	onto, err := s.repo.Parent(commits[first])
	if err != nil {
		return tip, err
	}
	return s.repo.Replay(ctx, onto, commits[first:], gitrepo.ReplayOptions{
		Keep: func(c gitrepo.Hash, ch gitrepo.FileChange) bool {
			problem, ok := broken[c.String()][ch.Path]
			if !ok {
				// A commit the trust rule refused whole: none of it is
				// kept, or this clone's key would sign it.
				problem, ok = broken[c.String()][""]
			}
			if ok {
				out.Dropped = append(out.Dropped, RepairChange{Commit: c.String(), Path: ch.Path, Problem: problem})
			}
			return !ok
		},
		SetAside: func(c gitrepo.Hash, conflict error) error {
			out.SetAside = append(out.SetAside, c.String())
			return s.setAside(ctx, c, conflict)
		},
	})
}

// mend commits on tip the files that differ from what reads take them to
// be, if any.
func (s *Store) mend(tip gitrepo.Hash, st *integrity.State, actor *metav1.Actor, out *Repaired) (gitrepo.Hash, error) {
	var edits []gitrepo.Edit
	put := func(path string, blob gitrepo.Hash, problem string) error {
		have, err := s.repo.BlobAt(tip, path)
		if err != nil || have == blob {
			return err
		}
		edits = append(edits, gitrepo.Edit{Path: path, Blob: blob})
		out.Mended = append(out.Mended, RepairChange{Path: path, Problem: problem})
		return nil
	}
	for _, p := range sortedKeys(st.Restored) {
		if st.Excluded[p] != "" {
			continue
		}
		if err := put(p, gitrepo.NewHash(st.Restored[p]), "record put back as first written"); err != nil {
			return tip, err
		}
	}
	for _, p := range sortedKeys(st.Excluded) {
		if err := put(p, gitrepo.ZeroHash, "removed: not a valid record where it lies"); err != nil {
			return tip, err
		}
	}
	if st.Config != "" {
		if err := put(config.File, gitrepo.NewHash(st.Config), "put back as its last valid commit left it"); err != nil {
			return tip, err
		}
	}
	for _, p := range sortedKeys(st.Envs) {
		if err := put(p, gitrepo.NewHash(st.Envs[p]), "put back as its last valid commit left it, with its env event"); err != nil {
			return tip, err
		}
	}
	for _, p := range sortedKeys(st.Foreign) {
		what := "put back as before a commit no operator signed"
		if st.Foreign[p] == "" {
			what = "removed: added by a commit no operator signed"
		}
		if err := put(p, gitrepo.NewHash(st.Foreign[p]), what); err != nil {
			return tip, err
		}
	}
	if len(edits) == 0 {
		return tip, nil
	}
	sig := gitrepo.Signature{Name: actor.GetName(), Email: actor.GetEmail(), When: s.now()}
	msg := "meta: repair: put back " + record.Count(len(edits), "file") + " as the log's history has them\n"
	return s.repo.Build(tip, edits, msg, sig)
}

// moveTo moves the branch from tip to next, a commit made without the work
// tree, and brings the work tree and the index along, as a sync does (a
// kill half way is finished the same way).
func (s *Store) moveTo(tip, next gitrepo.Hash, why string) error {
	changes, err := s.repo.Diff(tip, next)
	if err != nil {
		return err
	}
	if err := s.preflight(changes); err != nil {
		return err
	}
	if err := s.journal.noteSync(tip, next); err != nil {
		return err
	}
	sig := gitrepo.Signature{Name: "meta", When: time.Now()}
	if err := s.repo.MoveBranch(tip, next, sig, why); err != nil {
		s.journal.clearSync()
		return err
	}
	if err := s.materialize(changes); err != nil {
		return err
	}
	s.journal.clearSync()
	_, err = s.stateAt(next)
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
