package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
)

// Finding is one thing `meta verify` found wrong. Its JSON keys are part of
// meta's interface.
type Finding struct {
	Path    string `json:"path"`
	Commit  string `json:"commit"`
	Problem string `json:"problem"`
	// Acknowledged says the commit is quarantined and the operator
	// acknowledged it (`meta quarantine ack`): listed, not failing.
	Acknowledged bool `json:"acknowledged"`
}

func (f Finding) String() string {
	if f.Commit == "" {
		return fmt.Sprintf("%s: %s", f.Path, f.Problem)
	}
	ack := ""
	if f.Acknowledged {
		ack = ", acknowledged"
	}
	if f.Path == "" { // the commit's own problem: its signature
		return fmt.Sprintf("commit %s: %s%s", f.Commit[:12], f.Problem, ack)
	}
	return fmt.Sprintf("%s: %s (commit %s%s)", f.Path, f.Problem, f.Commit[:12], ack)
}

// Verification is what Verify found.
type Verification struct {
	// Commits is how many commits it checked.
	Commits int
	// Signatures counts the commits by what their signature says
	// (integrity.Verified, Unsigned, UnknownKey, BadSignature), against
	// the operators listed at each one's parent. Where meta.yaml requires
	// signatures, all but Verified are quarantined and in Findings too.
	Signatures map[string]int
	// Quarantined are the commits that break the log's rules, oldest
	// first (see package integrity).
	Quarantined []integrity.Finding
	// Findings are every problem: those of quarantined commits, env file
	// versions with values in clear, and differences between the work tree
	// and the branch.
	Findings []Finding
}

// Failed says whether anything found is not acknowledged.
func (v *Verification) Failed() bool {
	for _, f := range v.Findings {
		if !f.Acknowledged {
			return true
		}
	}
	return false
}

// Verify checks the whole log afresh: every commit of the branch's history
// by the log's rules (package integrity), reading every record; every
// version of every env file is sealed; the work tree holds exactly the
// committed records and env files. onCommit, if set, is called per commit
// checked, for progress. What it finds of history becomes this clone's
// integrity state: the most thorough there is.
func (s *Store) Verify(ctx context.Context, onCommit func()) (*Verification, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	out := &Verification{}
	// Who signed each event is derived and kept in the cache: verify
	// believes none of it, and the next read walks history for it again.
	s.cache.DropSigned()
	var envs []historyFile
	branch, _ := s.repo.Branch()
	out.Signatures = map[string]int{}
	st, err := integrity.Verify(ctx, s.repo, branch, tip, func(info gitrepo.CommitInfo, changes []gitrepo.Change, v integrity.Verdict) {
		out.Commits++
		out.Signatures[v.Status]++
		for _, ch := range changes {
			if isEnvPath(ch.Path) && !ch.To.IsZero() {
				// Env files change in place; every version must be sealed.
				envs = append(envs, historyFile{path: ch.Path, commit: info.ID.String(), blob: ch.To})
			}
		}
		if onCommit != nil {
			onCommit()
		}
	}, func() {
		out.Commits, out.Signatures, envs = 0, map[string]int{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if !tip.IsZero() {
		s.imu.Lock()
		s.publish(st)
		s.imu.Unlock()
	}
	acked := s.acknowledged()
	out.Quarantined = st.Findings
	for _, f := range st.Findings {
		for _, p := range f.Problems {
			out.Findings = append(out.Findings, Finding{Path: p.Path, Commit: f.Commit, Problem: p.What, Acknowledged: slices.Contains(acked, f.Commit)})
		}
	}
	if p, ok, err := s.Pinned(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	} else if ok {
		if err := s.PinHolds(ctx, p); errors.Is(err, ErrPinLost) {
			out.Findings = append(out.Findings, Finding{Commit: p.Commit, Problem: err.Error()})
		} else if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	sealedFindings, err := s.checkSealed(ctx, envs)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	out.Findings = append(out.Findings, sealedFindings...)
	wt, err := s.checkWorkTree(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	out.Findings = append(out.Findings, wt...)
	derived, err := s.checkDerived(ctx, tip, st)
	if err != nil {
		return nil, fmt.Errorf("verify: the published derived state: %w", err)
	}
	out.Findings = append(out.Findings, derived...)
	sort.SliceStable(out.Findings, func(i, j int) bool { return out.Findings[i].Path < out.Findings[j].Path })
	return out, nil
}

// historyFile is one version of a file that a commit wrote.
type historyFile struct {
	path, commit string
	blob         gitrepo.Hash
}

// checkSealed reports env file versions in history that are not sealed, or
// hold a value sops left in clear: secrets that reached git.
func (s *Store) checkSealed(ctx context.Context, envs []historyFile) ([]Finding, error) {
	var findings []Finding
	blobs := make([]gitrepo.Hash, len(envs))
	for i, e := range envs {
		blobs[i] = e.blob
	}
	i := 0
	err := s.repo.Blobs(ctx, blobs, func(_ gitrepo.Hash, data []byte, err error) {
		e := envs[i]
		i++
		switch {
		case err != nil:
			findings = append(findings, Finding{Path: e.path, Commit: e.commit, Problem: err.Error()})
		case !sealed.IsSealed(data):
			findings = append(findings, Finding{Path: e.path, Commit: e.commit, Problem: "env file is not sops-encrypted: its values are in git history in clear text"})
		default:
			if keys := sealed.ClearKeys(data); len(keys) > 0 {
				findings = append(findings, Finding{Path: e.path, Commit: e.commit, Problem: "values stored unencrypted: " + strings.Join(keys, ", ")})
			}
		}
	})
	return findings, err
}

// checkEnvs compares the sealed env files in the work tree with the branch
// tip, and their recipients with meta.yaml's access rules.
func (s *Store) checkEnvs(tip gitrepo.Hash, committed map[string]gitrepo.Hash) ([]Finding, error) {
	apps, err := s.envApps(tip)
	if err != nil {
		return nil, err
	}
	var findings []Finding
	for _, a := range apps {
		p := projects.EnvPath(a)
		data, err := s.work.read(p)
		if errors.Is(err, os.ErrNotExist) {
			if _, ok := committed[p]; ok {
				findings = append(findings, Finding{Path: p, Problem: "committed but missing from the work tree (`git checkout -- " + p + "` restores it)"})
			}
			continue
		}
		if err != nil {
			findings = append(findings, Finding{Path: p, Problem: err.Error()})
			continue
		}
		h, ok := committed[p]
		switch {
		case !ok:
			findings = append(findings, Finding{Path: p, Problem: "in the work tree but not committed"})
		case gitrepo.BlobID(data) != h:
			findings = append(findings, Finding{Path: p, Problem: "work tree copy differs from the committed env file (edited by hand?)"})
		}
		if s.Config().Stale(a.Project, a.Env, data) {
			findings = append(findings, Finding{Path: p, Problem: "encrypted to other recipients than meta.yaml gives access to; `meta env rekey " + a.App + "` re-encrypts it"})
		}
	}
	return findings, nil
}

// checkWorkTree compares the records in the work tree with the branch tip.
func (s *Store) checkWorkTree(ctx context.Context) ([]Finding, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	committed := map[string]gitrepo.Hash{}
	if !tip.IsZero() {
		if err := s.repo.TreeFiles(ctx, tip, projects.Root, func(p string, h gitrepo.Hash) { committed[p] = h }); err != nil {
			return nil, err
		}
	}
	var findings []Finding
	present := map[string]bool{}
	for _, a := range s.work.apps() {
		for _, p := range s.work.records(a) {
			present[p] = true
			h, ok := committed[p]
			if !ok {
				findings = append(findings, Finding{Path: p, Problem: "in the work tree but not committed"})
				continue
			}
			data, err := s.work.read(p)
			if err != nil {
				findings = append(findings, Finding{Path: p, Problem: err.Error()})
			} else if gitrepo.BlobID(data) != h {
				findings = append(findings, Finding{Path: p, Problem: "work tree copy differs from the committed record"})
			}
		}
	}
	envFindings, err := s.checkEnvs(tip, committed)
	if err != nil {
		return nil, err
	}
	findings = append(findings, envFindings...)
	for p := range committed {
		if !present[p] {
			if _, err := projects.ParseRecordPath(p); err == nil {
				findings = append(findings, Finding{Path: p, Problem: "committed but missing from the work tree (`git checkout -- " + p + "` restores it)"})
			}
		}
	}
	return findings, nil
}

// WorkTreeProblems compares the work tree's records and env files with the
// branch tip, changing nothing: hand edits not committed.
func (s *Store) WorkTreeProblems(ctx context.Context) ([]Finding, error) {
	return s.checkWorkTree(ctx)
}
