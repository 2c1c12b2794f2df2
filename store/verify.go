package store

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Finding is one thing `meta verify` found wrong.
type Finding struct {
	Path    string `json:"path"`
	Commit  string `json:"commit"`
	Problem string `json:"problem"`
}

func (f Finding) String() string {
	if f.Commit == "" {
		return fmt.Sprintf("%s: %s", f.Path, f.Problem)
	}
	return fmt.Sprintf("%s: %s (commit %s)", f.Path, f.Problem, f.Commit[:12])
}

// Verify checks the whole log: in every commit of the branch's history, no
// record was modified or deleted, every added file under projects/ has a
// valid record path, decodes, and sits where its content says; and the work
// tree holds exactly the committed records. onCommit, if set, is called per
// commit examined, for progress.
func (s *Store) Verify(ctx context.Context, onCommit func()) ([]Finding, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	var findings []Finding
	var adds, envs []historyFile
	err := s.repo.History(ctx, projects.Root, onCommit, func(c gitrepo.Change) error {
		commit := c.Commit.String()
		if isEnvPath(c.Path) {
			// Env files change in place; every version must be sealed.
			if !c.To.IsZero() {
				envs = append(envs, historyFile{path: c.Path, commit: commit, blob: c.To})
			}
			return nil
		}
		switch {
		case !c.From.IsZero() && c.To.IsZero():
			findings = append(findings, Finding{Path: c.Path, Commit: commit, Problem: "record deleted"})
		case !c.From.IsZero():
			findings = append(findings, Finding{Path: c.Path, Commit: commit, Problem: "record modified"})
		default:
			adds = append(adds, historyFile{path: c.Path, commit: commit, blob: c.To})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	// Check each added record once per blob and path: paths first, then
	// the contents, all through one git process.
	type key struct {
		path string
		blob gitrepo.Hash
	}
	problems := map[key]string{}
	var blobs []gitrepo.Hash
	var keys []key
	for _, a := range adds {
		k := key{a.path, a.blob}
		if _, seen := problems[k]; seen {
			continue
		}
		if _, err := projects.ParseRecordPath(a.path); err != nil {
			problems[k] = err.Error()
			continue
		}
		problems[k] = ""
		blobs = append(blobs, a.blob)
		keys = append(keys, k)
	}
	i := 0
	err = s.repo.Blobs(ctx, blobs, func(_ gitrepo.Hash, data []byte, err error) {
		k := keys[i]
		i++
		if err != nil {
			problems[k] = err.Error()
			return
		}
		ev, err := record.Unmarshal(data)
		if err == nil {
			err = record.CheckPath(ev, k.path)
		}
		if err != nil {
			problems[k] = err.Error()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, a := range adds {
		if p := problems[key{a.path, a.blob}]; p != "" {
			findings = append(findings, Finding{Path: a.path, Commit: a.commit, Problem: p})
		}
	}
	sealedFindings, err := s.checkSealed(ctx, envs)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	findings = append(findings, sealedFindings...)
	wt, err := s.checkWorkTree(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	findings = append(findings, wt...)
	sort.SliceStable(findings, func(i, j int) bool { return findings[i].Path < findings[j].Path })
	return findings, nil
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
		if s.cfg.Stale(a.Project, a.Env, data) {
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
