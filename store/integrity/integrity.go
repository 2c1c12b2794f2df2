// Package integrity checks, one by one, the commits a log takes in, and
// keeps what history says beyond the tip's tree.
//
// The rules of the log: a commit may add valid records at valid paths
// (the name an event id in the month of its path, the app a valid domain,
// project and env valid, the bytes an event whose address is its path),
// change an app's env file together with the env event that describes it,
// change meta.yaml within its schema, and touch anything outside projects/.
// Whatever else a commit does breaks the log. Such a commit is not
// refused: the history is taken in, because refusing a shared history
// forever helps nobody. It is quarantined instead: a Finding names it, and
// what it broke is never folded. A record a later commit modified or
// deleted is read as its first commit wrote it; a file under projects/
// that is no valid record is left out; meta.yaml and an env file stay as
// their last valid commit left them.
//
// The State is derived from history and always safe to rebuild by walking
// it again.
package integrity

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// Version changes whenever the rules do, so that a State checked by older
// rules is rebuilt.
const Version = 4

// State is what a log's history says beyond its tip's tree.
type State struct {
	Version int `json:"version"`
	// Branch is the branch the history was walked on, the log's: a
	// meta.yaml naming another is not valid.
	Branch string `json:"branch,omitempty"`
	// Checked is the commit the state holds for: every commit reachable
	// from it has been checked.
	Checked string `json:"checked"`
	// Restored maps the path of every record a later commit modified or
	// deleted to the blob its first commit wrote.
	Restored map[string]string `json:"restored,omitempty"`
	// Excluded maps files under projects/ that are no valid record where
	// they lie to their blob.
	Excluded map[string]string `json:"excluded,omitempty"`
	// Config is the blob of the last valid meta.yaml while the tip's is
	// not; Envs the same per env file.
	Config string            `json:"config,omitempty"`
	Envs   map[string]string `json:"envs,omitempty"`
	// Foreign maps each file outside projects/ that a commit the trust rule
	// refused changed (and no trusted commit changed since) to its blob
	// before that commit, "" for none: reads never use such files, but a
	// signed commit vouches for its whole tree, so repair puts them back.
	Foreign map[string]string `json:"foreign,omitempty"`
	// Trusted is the blob of the meta.yaml in force at Checked, valid or
	// not the tip's: who may sign the next commit, and whether one must
	// (see trust.go).
	Trusted string `json:"trusted,omitempty"`
	// EnvWith maps the path of every record added by a commit that also
	// changed its app's env file to that file's new blob: the file an env
	// event there describes (see CheckEvent).
	EnvWith map[string]string `json:"env_with,omitempty"`
	// Purged maps the path of every record a purge event took out of the
	// log (see Check) to that event's id.
	Purged map[string]string `json:"purged,omitempty"`
	// Findings name the quarantined commits, oldest first.
	Findings []Finding `json:"findings,omitempty"`

	// byApp indexes Restored and Excluded by app directory, built by
	// Index and dropped whenever either changes.
	byApp map[string]App
	// parsed is Trusted read, for the blob parsedBlob.
	parsed     *config.Config
	parsedBlob string
	// What one walk learns of the policy's adoption, to check that the
	// commits it took as from before the policy are (see lateForks):
	// prePolicy are the commits it judged so, since the commit the policy
	// was adopted on, and force the commits a walk again must judge as
	// under the policy.
	prePolicy []gitrepo.Hash
	since     gitrepo.Hash
	force     map[gitrepo.Hash]bool
	// The same for operators removed: signed are the commits the walk
	// found verified, with their keys; removals the keys trusted commits
	// took off the list, with the history before each; revoked the
	// commits a walk again must not take those keys for.
	signed   []signedCommit
	removals []removal
	revoked  map[gitrepo.Hash]string
	// judged is the verdict the trust rule gave the commit judgedID, the
	// last it judged: what Verify counts, without reading it again.
	judged   Verdict
	judgedID gitrepo.Hash
}

type signedCommit struct {
	commit gitrepo.Hash
	key    string
}

type removal struct {
	key    string
	before gitrepo.Hash
}

// Finding is one quarantined commit and what it broke.
type Finding struct {
	Commit   string    `json:"commit"`
	Author   string    `json:"author"`
	Time     time.Time `json:"time"`
	Subject  string    `json:"subject"`
	Problems []Problem `json:"problems"`
}

// Problem is one thing a commit did against the log's rules.
type Problem struct {
	Path string `json:"path"`
	What string `json:"problem"`
}

// String says the problem, after the path it lies at; a problem of the
// whole commit (its signature) has no path.
func (p Problem) String() string {
	if p.Path == "" {
		return p.What
	}
	return p.Path + ": " + p.What
}

// Short is the commit's id cut for people to read.
func (f Finding) Short() string {
	if len(f.Commit) > 12 {
		return f.Commit[:12]
	}
	return f.Commit
}

// Summary says in one line what the commit broke: "path: problem" for
// the first three, then how many more.
func (f Finding) Summary() string {
	var what []string
	for i, p := range f.Problems {
		if i == 3 {
			what = append(what, fmt.Sprintf("and %d more", len(f.Problems)-3))
			break
		}
		what = append(what, p.String())
	}
	return strings.Join(what, "; ")
}

// New is the state of a log nobody checked yet.
func New() *State { return &State{Version: Version} }

// Clone is a copy of the state that shares nothing with it.
func (st *State) Clone() *State {
	c := *st
	c.byApp = nil
	c.Restored = maps.Clone(st.Restored)
	c.Excluded = maps.Clone(st.Excluded)
	c.Envs = maps.Clone(st.Envs)
	c.Purged = maps.Clone(st.Purged)
	c.EnvWith = maps.Clone(st.EnvWith)
	c.Foreign = maps.Clone(st.Foreign)
	c.forget()
	c.Findings = slices.Clone(st.Findings)
	for i := range c.Findings {
		c.Findings[i].Problems = slices.Clone(c.Findings[i].Problems)
	}
	return &c
}

// Clean says nothing in the state differs from the tip's tree.
func (st *State) Clean() bool {
	return len(st.Restored) == 0 && len(st.Excluded) == 0 && st.Config == "" && len(st.Envs) == 0 && len(st.Foreign) == 0
}

// Finding returns the finding for commit, if it is quarantined.
func (st *State) Finding(commit string) (Finding, bool) {
	for _, f := range st.Findings {
		if f.Commit == commit {
			return f, true
		}
	}
	return Finding{}, false
}

// App is what the state says of one app's records: paths to read with
// another blob than the tip's (or that the tip lacks), and paths to leave
// out.
type App struct {
	Restored map[string]gitrepo.Hash
	Excluded map[string]bool
}

// App returns what the state says of the app at a.
func (st *State) App(a projects.Address) App {
	if st.byApp != nil {
		return st.byApp[a.Dir()]
	}
	return st.index()[a.Dir()]
}

// Index builds the index App answers from, for a state that will not
// change again: App is then safe to call from many goroutines at once.
func (st *State) Index() { st.byApp = st.index() }

func (st *State) index() map[string]App {
	by := map[string]App{}
	for p, b := range st.Restored {
		app := by[appDir(p)]
		if app.Restored == nil {
			app.Restored = map[string]gitrepo.Hash{}
		}
		app.Restored[p] = gitrepo.NewHash(b)
		by[appDir(p)] = app
	}
	for p := range st.Excluded {
		app := by[appDir(p)]
		if app.Excluded == nil {
			app.Excluded = map[string]bool{}
		}
		app.Excluded[p] = true
		by[appDir(p)] = app
	}
	return by
}

// appDir is the app directory a record path lies in:
// projects/<project>/<env>/<app>, the part before the month. Paths too
// short to be records index under themselves, which no app asks for.
func appDir(p string) string {
	parts := strings.SplitN(p, "/", 6)
	if len(parts) < 5 {
		return p
	}
	return strings.Join(parts[:4], "/")
}

// Key says what the state changes of an app's records, in a string that
// is the same for the same changes: what a memoised head is keyed by
// beside the app's tree.
func (a App) Key() string {
	if len(a.Restored) == 0 && len(a.Excluded) == 0 {
		return ""
	}
	var parts []string
	for p, b := range a.Restored {
		parts = append(parts, "r "+p+" "+b.String())
	}
	for p := range a.Excluded {
		parts = append(parts, "x "+p)
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

// RestoredApps lists the apps that have records only the state knows (a
// later commit deleted them all from the tree).
func (st *State) RestoredApps() []projects.Address {
	seen := map[projects.Address]bool{}
	var out []projects.Address
	for p := range st.Restored {
		if rec, err := projects.ParseRecordPath(p); err == nil && !seen[rec.Address] {
			seen[rec.Address] = true
			out = append(out, rec.Address)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// finding adds problems to the finding of commit, making one when there
// is none.
func (st *State) finding(info gitrepo.CommitInfo, problems ...Problem) {
	for i := range st.Findings {
		if st.Findings[i].Commit == info.ID.String() {
			st.Findings[i].Problems = addProblems(st.Findings[i].Problems, problems)
			return
		}
	}
	st.Findings = append(st.Findings, Finding{Commit: info.ID.String(), Author: info.Author, Time: info.When, Subject: info.Subject, Problems: addProblems(nil, problems)})
}

func addProblems(have, add []Problem) []Problem {
	for _, p := range add {
		dup := false
		for _, h := range have {
			dup = dup || h == p
		}
		if !dup {
			have = append(have, p)
		}
	}
	return have
}
