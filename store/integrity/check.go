package integrity

import (
	"context"
	"errors"
	"fmt"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Problems a commit can have, as Problem.What begins.
const (
	Modified   = "record modified"
	Deleted    = "record deleted"
	ReAdded    = "record re-added with other content than its first"
	NotRecord  = "not a record"
	BadRecord  = "not a valid event"
	EnvNoEvent = "env file changed without its env event"
	EnvDeleted = "env file deleted"
	BadConfig  = "meta.yaml is not valid"
	ConfigGone = "meta.yaml deleted"
	EventNoEnv = "env event without the env file it describes"
	NotFile    = "a submodule entry, not a file"
	// PurgedReAdded: a record a purge event took out, added again.
	PurgedReAdded = "purged event re-added"
	modifiedJunk  = "a file that is no record, changed"
)

// Check brings the state up to the commit to: it walks every commit
// reachable from to that the state has not checked, parents before
// children, applies the rules to each, and sets Checked. When the state
// was checked on a history to no longer contains (a force-push, a repair),
// it starts afresh: what that history said is not to be carried over, and
// its findings are gone with it. The history both share is walked again
// without reading contents (it was read before; reads find what a walk
// leaves unread, see Reject), what is new with them.
//
// contents says whether to read every added record of the new commits to
// check it is a valid event: a walk of a whole long history leaves that to
// the reads, which decode every record anyway.
//
// onCommit, when set, is called after each commit checked, for progress.
func (st *State) Check(ctx context.Context, repo *gitrepo.Repo, branch string, to gitrepo.Hash, contents bool, onCommit func()) error {
	visit := func(gitrepo.CommitInfo, []gitrepo.Change) {}
	if onCommit != nil {
		visit = func(gitrepo.CommitInfo, []gitrepo.Change) { onCommit() }
	}
	if st.Version != Version || st.Branch != branch {
		*st = *New()
		st.Branch = branch
	}
	from := gitrepo.ZeroHash
	if st.Checked != "" {
		checked := gitrepo.NewHash(st.Checked)
		if checked == to {
			return nil
		}
		if _, err := repo.Info(checked); err != nil {
			// The commit is gone (a reset, then git gc): nothing of the
			// state is known to hold.
			*st = *New()
			st.Branch = branch
			checked = gitrepo.ZeroHash
		}
		if !checked.IsZero() {
			// The common case, read without starting git: a few commits of
			// one parent each on top of the one checked.
			ok, err := repo.WalkLinear(checked, to, func(info gitrepo.CommitInfo, changes []gitrepo.Change) error {
				if err := st.apply(repo, info, changes, contents); err != nil {
					return err
				}
				visit(info, changes)
				return nil
			})
			if err != nil {
				return fmt.Errorf("check history: %w", err)
			}
			if ok {
				st.Checked = to.String()
				return st.settleForks(ctx, repo, branch, to, contents, visit)
			}
		}
		base := gitrepo.ZeroHash
		if !checked.IsZero() {
			var err error
			if base, err = repo.MergeBase(ctx, checked, to); err != nil {
				return err
			}
		}
		from = base
		if base != checked {
			*st = *New()
			st.Branch = branch
			if err := st.walkVisiting(ctx, repo, gitrepo.ZeroHash, base, false, visit); err != nil {
				return err
			}
		}
	}
	if err := st.walkVisiting(ctx, repo, from, to, contents, visit); err != nil {
		return err
	}
	st.Checked = to.String()
	return st.settleForks(ctx, repo, branch, to, contents, visit)
}

// settleForks walks all of history to to again when the walk that brought
// the state there took commits as from before the policy that are not
// (lateForks), judging those as under it; it forgets what the walk learnt
// of the adoption either way.
func (st *State) settleForks(ctx context.Context, repo *gitrepo.Repo, branch string, to gitrepo.Hash, contents bool, visit func(gitrepo.CommitInfo, []gitrepo.Change)) error {
	force, revoked := map[gitrepo.Hash]bool{}, map[gitrepo.Hash]string{}
	for range 3 { // each pass can only add to them; one is the rule
		grew, err := st.grow(ctx, repo, force, revoked)
		if err != nil {
			return err
		}
		if !grew {
			break
		}
		*st = *New()
		st.Branch, st.force, st.revoked = branch, force, revoked
		if err := st.walkVisiting(ctx, repo, gitrepo.ZeroHash, to, contents, visit); err != nil {
			return err
		}
		st.Checked = to.String()
	}
	st.forget()
	return nil
}

// grow adds what late finds to force and revoked, and says whether that
// added anything.
func (st *State) grow(ctx context.Context, repo *gitrepo.Repo, force map[gitrepo.Hash]bool, revoked map[gitrepo.Hash]string) (bool, error) {
	f, r, err := st.late(ctx, repo)
	if err != nil {
		return false, err
	}
	grew := false
	for _, h := range f {
		if !force[h] {
			force[h], grew = true, true
		}
	}
	for h, k := range r {
		if revoked[h] != k {
			revoked[h], grew = k, true
		}
	}
	return grew, nil
}

// Verify checks all of history up to to afresh, reading every record
// added, and tells visit of each commit after its check, with what its
// signature says against the operators listed at its parent (whether or
// not meta.yaml requires signatures there): what `meta verify` runs.
//
// restart, when a first walk finds a line forked from below the policy
// (settleForks), is called before the walk is made again, visit and all.
func Verify(ctx context.Context, repo *gitrepo.Repo, branch string, to gitrepo.Hash, visit func(gitrepo.CommitInfo, []gitrepo.Change, Verdict), restart func()) (*State, error) {
	force, revoked := map[gitrepo.Hash]bool{}, map[gitrepo.Hash]string{}
	for pass := 0; ; pass++ {
		st, err := verifyOnce(ctx, repo, branch, to, force, revoked, visit)
		if err != nil {
			return nil, err
		}
		grew, err := st.grow(ctx, repo, force, revoked)
		if err != nil {
			return nil, err
		}
		if !grew || pass == 2 {
			st.forget()
			return st, nil
		}
		restart()
	}
}

func verifyOnce(ctx context.Context, repo *gitrepo.Repo, branch string, to gitrepo.Hash, force map[gitrepo.Hash]bool, revoked map[gitrepo.Hash]string, visit func(gitrepo.CommitInfo, []gitrepo.Change, Verdict)) (*State, error) {
	st := New()
	st.Branch, st.force, st.revoked = branch, force, revoked
	err := repo.Walk(ctx, gitrepo.ZeroHash, to, func(info gitrepo.CommitInfo, changes []gitrepo.Change) error {
		_, by, err := st.requires(repo, info, st.ownChanges(len(info.Parents), changes))
		if err != nil {
			return err
		}
		if err := st.apply(repo, info, changes, true); err != nil {
			return err
		}
		// The trust rule judged it already where it applied; else it is
		// judged here, by the same operators, for the counts.
		v, judged := st.judged, st.judgedID == info.ID
		if !judged {
			if v, err = Judge(repo, info.ID, by); err != nil {
				return err
			}
		}
		visit(info, changes, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check history: %w", err)
	}
	st.Checked = to.String()
	return st, nil
}

func (st *State) walkVisiting(ctx context.Context, repo *gitrepo.Repo, from, to gitrepo.Hash, contents bool, visit func(gitrepo.CommitInfo, []gitrepo.Change)) error {
	err := repo.Walk(ctx, from, to, func(info gitrepo.CommitInfo, changes []gitrepo.Change) error {
		if err := st.apply(repo, info, changes, contents); err != nil {
			return err
		}
		if visit != nil {
			visit(info, changes)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check history: %w", err)
	}
	return nil
}

// Advance takes in one commit meta made itself on parent, the commit the
// state holds for, with the changes it made: no walk of history, and no
// reading of the records it adds, which meta wrote valid. A state checked
// elsewhere is left alone: the next Check walks.
func (st *State) Advance(repo *gitrepo.Repo, info gitrepo.CommitInfo, parent gitrepo.Hash, changes []gitrepo.Change) error {
	if st.Checked != parent.String() {
		return nil
	}
	if err := st.apply(repo, info, changes, false); err != nil {
		return err
	}
	st.Checked = info.ID.String()
	st.forget() // meta's own commit, on the tip: no fork
	return nil
}

// apply takes in one commit: what it changed against each of its parents.
func (st *State) apply(repo *gitrepo.Repo, info gitrepo.CommitInfo, changes []gitrepo.Change, contents bool) error {
	changes = st.ownChanges(len(info.Parents), changes)
	if problem, err := st.trust(repo, info, changes); err != nil {
		return err
	} else if problem != "" {
		st.distrust(info, changes, problem)
		return nil
	}
	if before := st.Trusted; len(info.Parents) > 0 {
		defer func() {
			if st.Trusted != before {
				st.noteRemovals(repo, before, info.Parents[0])
			}
		}()
	}
	var problems []Problem
	add := func(path, what string) { problems = append(problems, Problem{Path: path, What: what}) }
	purged, err := purges(repo, changes)
	if err != nil {
		return err
	}
	var envChanges []gitrepo.Change
	envFiles := map[projects.Address]gitrepo.Hash{}
	for _, ch := range changes {
		if a, err := projects.ParseEnvPath(ch.Path); err == nil && !ch.To.IsZero() {
			envFiles[a] = ch.To
		}
	}
	for _, ch := range changes {
		p := ch.Path
		if ch.From.IsZero() && ch.To.IsZero() {
			// A submodule entry added or removed, no file: one put where
			// the log keeps its files is named. One that replaced a file
			// is that file deleted, by the rules below.
			if ch.Gitlink && inLog(p) {
				add(p, NotFile)
			}
			continue
		}
		switch {
		case p == config.File:
			if what, err := st.config(repo, ch); err != nil {
				return err
			} else if what != "" {
				add(p, what)
			}
		case p != projects.Root && !inLog(p):
			// Outside projects/ anything goes (a file named projects is
			// in the log's place: junk, below); a trusted commit's change
			// of a file a refused one changed settles it.
			delete(st.Foreign, p)
		case isEnvPath(p):
			envChanges = append(envChanges, ch)
		default:
			if _, err := projects.ParseRecordPath(p); err != nil {
				if what := st.junk(ch, err); what != "" {
					add(p, what)
				}
				continue
			}
			if id, ok := purged[p]; ok {
				st.purge(p, id)
				continue
			}
			if rec, _ := projects.ParseRecordPath(p); ch.From.IsZero() && !ch.To.IsZero() {
				if env, ok := envFiles[rec.Address]; ok {
					st.envWith(p, env)
				}
			}
			what, err := st.record(repo, ch, contents)
			if err != nil {
				return err
			}
			if what != "" {
				add(p, what)
			}
		}
	}
	envProblems, err := st.envs(repo, changes, envChanges)
	if err != nil {
		return err
	}
	problems = append(problems, envProblems...)
	if len(problems) > 0 {
		st.finding(info, problems...)
	}
	return nil
}

// ownChanges are what a commit did itself. A merge's diff against one
// parent shows what the other side's commits did, and those were checked
// on their own: a path the merge left as one of its parents has it is
// that side's doing. What is the merge's own: a path that differs from
// every parent (an evil merge, a conflict's resolution), as against its
// first parent; and a file a parent has that the merge dropped, unless the
// other side deleted it in a commit of its own (`git merge -s ours` drops
// the other side's records: that is the merge's deletion).
func (st *State) ownChanges(parents int, changes []gitrepo.Change) []gitrepo.Change {
	if parents < 2 {
		return changes
	}
	var paths []string
	byPath := map[string][]gitrepo.Change{}
	for _, ch := range changes {
		if byPath[ch.Path] == nil {
			paths = append(paths, ch.Path)
		}
		byPath[ch.Path] = append(byPath[ch.Path], ch)
	}
	var out []gitrepo.Change
	for _, p := range paths {
		chs := byPath[p]
		differs := map[int]bool{}
		for _, ch := range chs {
			differs[ch.Parent] = true
		}
		switch {
		case len(differs) == parents:
			out = append(out, chs[0])
		case !chs[0].To.IsZero():
			// as a parent has it
		case st.Restored[p] != "":
			// deleted by a commit of the side the merge took it from
		default:
			out = append(out, chs[0])
		}
	}
	return out
}

// record applies the rules to one change of a record path; it returns
// what the change broke, "" for nothing.
func (st *State) record(repo *gitrepo.Repo, ch gitrepo.Change, contents bool) (string, error) {
	p, from, to := ch.Path, ch.From.String(), ch.To.String()
	if st.Excluded[p] != "" {
		// A file that was never a valid record: its removal mends the
		// log, anything else leaves it out still.
		if ch.To.IsZero() {
			st.unexclude(p)
			return "", nil
		}
		if ch.From.IsZero() {
			st.unexclude(p) // deleted before, added again: a new record
		} else {
			st.exclude(p, to)
			return modifiedJunk, nil
		}
	}
	first, known := st.Restored[p]
	switch {
	case ch.From.IsZero() && st.Purged[p] != "": // added again after a purge
		st.exclude(p, to)
		return PurgedReAdded, nil
	case ch.From.IsZero(): // added
		if known {
			if to == first {
				return "", nil // the first content back where it was
			}
			return ReAdded, nil
		}
		if contents {
			if err := st.validRecord(repo, p, ch.To); err != nil {
				st.exclude(p, to)
				if errors.Is(err, ErrEventNoEnv) {
					return EventNoEnv, nil
				}
				return BadRecord + ": " + err.Error(), nil
			}
		}
		return "", nil
	case ch.To.IsZero(): // deleted
		if !known {
			st.restore(p, from)
		}
		return Deleted, nil
	default: // modified
		if !known {
			st.restore(p, from)
			first = from
		}
		if to == first {
			return "", nil // put back as first written
		}
		return Modified, nil
	}
}

// purges finds the records a commit deletes on purpose: each named, with
// its path, by a purge event the same commit adds in the same app. It reads
// the added records of commits that delete records only.
func purges(repo *gitrepo.Repo, changes []gitrepo.Change) (map[string]string, error) {
	deletes := false
	for _, ch := range changes {
		if _, err := projects.ParseRecordPath(ch.Path); err == nil && !ch.From.IsZero() && ch.To.IsZero() {
			deletes = true
		}
	}
	if !deletes {
		return nil, nil
	}
	out := map[string]string{}
	for _, ch := range changes {
		if _, err := projects.ParseRecordPath(ch.Path); err != nil || !ch.From.IsZero() || ch.To.IsZero() {
			continue
		}
		data, err := repo.ReadBlob(ch.To)
		if err != nil {
			return nil, err
		}
		ev, err := record.Unmarshal(data)
		if err != nil || ev.GetKind() != metav1.Kind_KIND_PURGE || record.CheckPath(ev, ch.Path) != nil || record.Validate(ev) != nil {
			continue
		}
		target := ev.GetPurge().GetPath()
		for _, del := range changes {
			if del.Path == target && !del.From.IsZero() && del.To.IsZero() {
				out[target] = ev.GetId()
			}
		}
	}
	return out, nil
}

// purge takes a record out of every read, by a purge event: no finding.
func (st *State) purge(p, id string) {
	st.byApp = nil
	if st.Purged == nil {
		st.Purged = map[string]string{}
	}
	st.Purged[p] = id
	delete(st.Restored, p)
}

// junk applies the rules to a file under projects/ that is no record path.
func (st *State) junk(ch gitrepo.Change, why error) string {
	if ch.To.IsZero() {
		st.unexclude(ch.Path)
		return ""
	}
	st.exclude(ch.Path, ch.To.String())
	return NotRecord + ": " + why.Error()
}

// Reject leaves out a record a read found is no valid event (a walk that
// did not read contents let it through), naming the commit that added it.
// It returns whether the state changed.
func (st *State) Reject(path string, blob gitrepo.Hash, commit gitrepo.CommitInfo, why error) bool {
	if st.Excluded[path] == blob.String() {
		return false
	}
	st.exclude(path, blob.String())
	what := BadRecord + ": " + why.Error()
	if errors.Is(why, ErrEventNoEnv) {
		what = EventNoEnv
	}
	st.finding(commit, Problem{Path: path, What: what})
	return true
}

func (st *State) exclude(p, blob string) {
	st.byApp = nil
	if st.Excluded == nil {
		st.Excluded = map[string]string{}
	}
	st.Excluded[p] = blob
}

func (st *State) unexclude(p string) {
	st.byApp = nil
	delete(st.Excluded, p)
}

func (st *State) restore(p, blob string) {
	st.byApp = nil
	if st.Restored == nil {
		st.Restored = map[string]string{}
	}
	st.Restored[p] = blob
}

// config applies the rules to a change of meta.yaml.
func (st *State) config(repo *gitrepo.Repo, ch gitrepo.Change) (string, error) {
	lastValid := func() { st.keepConfig(ch.From) }
	if ch.To.IsZero() {
		lastValid()
		return ConfigGone, nil
	}
	data, err := repo.ReadBlob(ch.To)
	if err != nil {
		return "", err
	}
	cfg, err := config.Parse(data)
	if err == nil && cfg.Branch != "" && st.Branch != "" && cfg.Branch != st.Branch {
		// Every clone follows the branch meta.yaml names: one commit
		// renaming it would send them all to a branch that holds no log.
		err = fmt.Errorf("it names branch %s, but the log lives on %s, and a log's branch is recorded once", cfg.Branch, st.Branch)
	}
	if err != nil {
		lastValid()
		return BadConfig + ": " + err.Error(), nil
	}
	st.Config = ""
	st.Trusted = ch.To.String()
	return "", nil
}

// envs applies the rules to the env files a commit changed: each needs an
// env event of its app in the same commit whose digest is the new file's.
// (An env event without its file is CheckEvent's.)
func (st *State) envs(repo *gitrepo.Repo, all, envChanges []gitrepo.Change) ([]Problem, error) {
	if len(envChanges) == 0 {
		return nil, nil
	}
	// The digests the env events the commit adds name, by app: only the
	// records of apps whose env file changed are read.
	changedApps := map[projects.Address]bool{}
	for _, ch := range envChanges {
		a, _ := projects.ParseEnvPath(ch.Path)
		changedApps[a] = true
	}
	digests := map[projects.Address]map[string]bool{}
	for _, ch := range all {
		rec, err := projects.ParseRecordPath(ch.Path)
		if err != nil || !ch.From.IsZero() || ch.To.IsZero() || !changedApps[rec.Address] {
			continue
		}
		data, err := repo.ReadBlob(ch.To)
		if err != nil {
			return nil, err
		}
		ev, err := record.Unmarshal(data)
		if err != nil || ev.GetKind() != metav1.Kind_KIND_ENV || record.CheckPath(ev, ch.Path) != nil {
			continue
		}
		a := record.Address(ev)
		if digests[a] == nil {
			digests[a] = map[string]bool{}
		}
		digests[a][ev.GetEnvDigest()] = true
	}
	var problems []Problem
	for _, ch := range envChanges {
		a, _ := projects.ParseEnvPath(ch.Path)
		lastValid := func() { st.keepEnv(ch.Path, ch.From) }
		if last, ok := st.Envs[ch.Path]; ok && last == ch.To.String() {
			// Put back as its last valid commit left it (or, for one that
			// never was valid, removed): that mends it.
			delete(st.Envs, ch.Path)
			continue
		}
		if ch.To.IsZero() {
			lastValid()
			problems = append(problems, Problem{Path: ch.Path, What: EnvDeleted})
			continue
		}
		data, err := repo.ReadBlob(ch.To)
		if err != nil {
			return nil, err
		}
		if !digests[a][sealed.Digest(data)] {
			lastValid()
			problems = append(problems, Problem{Path: ch.Path, What: EnvNoEvent})
			continue
		}
		delete(st.Envs, ch.Path)
	}
	return problems, nil
}

// validRecord says why the blob at a record path is not a valid event
// there, nil when it is.
func (st *State) validRecord(repo *gitrepo.Repo, p string, blob gitrepo.Hash) error {
	data, err := repo.ReadBlob(blob)
	if err != nil {
		return err
	}
	ev, err := record.Unmarshal(data)
	if err != nil {
		return err
	}
	if err := record.CheckPath(ev, p); err != nil {
		return err
	}
	return st.CheckEvent(repo, p, ev)
}

// ErrEventNoEnv: an env event whose commit did not change its app's env
// file to the file it describes.
var ErrEventNoEnv = fmt.Errorf("%w: %s", record.ErrCorrupt, EventNoEnv)

// CheckEvent applies the rules that need history to a decoded event at
// path p: an env event says its app's env file changed, so the commit that
// added it must have changed that file to one whose digest it names, or
// the head would name an env nobody has. Reads call it on every event they
// decode; a walk that reads contents, on every record it checks.
func (st *State) CheckEvent(repo *gitrepo.Repo, p string, ev *metav1.Event) error {
	if ev.GetKind() != metav1.Kind_KIND_ENV {
		return nil
	}
	blob, ok := st.EnvWith[p]
	if !ok {
		return ErrEventNoEnv
	}
	data, err := repo.ReadBlob(gitrepo.NewHash(blob))
	if err != nil {
		return err
	}
	if sealed.Digest(data) != ev.GetEnvDigest() {
		return ErrEventNoEnv
	}
	return nil
}

func (st *State) envWith(p string, blob gitrepo.Hash) {
	if st.EnvWith == nil {
		st.EnvWith = map[string]string{}
	}
	st.EnvWith[p] = blob.String()
}

// inLog says p lies under projects/, where the log keeps its files.
func inLog(p string) bool { return strings.HasPrefix(p, projects.Root+"/") }

// keepConfig keeps from as the last valid meta.yaml, unless an earlier
// one is kept already: a change of it that is not taken leaves it as it
// was.
func (st *State) keepConfig(from gitrepo.Hash) {
	if st.Config == "" && !from.IsZero() {
		st.Config = from.String()
	}
}

// keepEnv is keepConfig for the env file at p.
func (st *State) keepEnv(p string, from gitrepo.Hash) {
	if st.Envs == nil {
		st.Envs = map[string]string{}
	}
	if _, ok := st.Envs[p]; !ok {
		st.Envs[p] = from.String()
	}
}

func isEnvPath(p string) bool {
	_, err := projects.ParseEnvPath(p)
	return err == nil
}
