package integrity

import (
	"context"
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
func (st *State) Check(ctx context.Context, repo *gitrepo.Repo, to gitrepo.Hash, contents bool, onCommit func()) error {
	visit := func(gitrepo.CommitInfo, []gitrepo.Change) {}
	if onCommit != nil {
		visit = func(gitrepo.CommitInfo, []gitrepo.Change) { onCommit() }
	}
	if st.Version != Version {
		*st = *New()
	}
	from := gitrepo.ZeroHash
	if st.Checked != "" {
		checked := gitrepo.NewHash(st.Checked)
		if checked == to {
			return nil
		}
		base, err := repo.MergeBase(ctx, checked, to)
		if err != nil {
			return err
		}
		from = base
		if base != checked {
			*st = *New()
			if err := st.walkVisiting(ctx, repo, gitrepo.ZeroHash, base, false, visit); err != nil {
				return err
			}
		}
	}
	if err := st.walkVisiting(ctx, repo, from, to, contents, visit); err != nil {
		return err
	}
	st.Checked = to.String()
	return nil
}

// Verify checks all of history up to to afresh, reading every record
// added, and tells visit of each commit after its check: what `meta
// verify` runs.
func Verify(ctx context.Context, repo *gitrepo.Repo, to gitrepo.Hash, visit func(gitrepo.CommitInfo, []gitrepo.Change)) (*State, error) {
	st := New()
	if err := st.walkVisiting(ctx, repo, gitrepo.ZeroHash, to, true, visit); err != nil {
		return nil, err
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
	return nil
}

// apply takes in one commit: what it changed against each of its parents.
func (st *State) apply(repo *gitrepo.Repo, info gitrepo.CommitInfo, changes []gitrepo.Change, contents bool) error {
	var problems []Problem
	add := func(path, what string) { problems = append(problems, Problem{Path: path, What: what}) }
	purged, err := purges(repo, changes)
	if err != nil {
		return err
	}
	var envChanges, envEvents []gitrepo.Change
	for _, ch := range changes {
		p := ch.Path
		switch {
		case p == config.File:
			if what, err := st.config(repo, ch); err != nil {
				return err
			} else if what != "" {
				add(p, what)
			}
		case !strings.HasPrefix(p, projects.Root+"/"):
			// Outside projects/ anything goes.
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
			what, err := st.record(repo, ch, contents)
			if err != nil {
				return err
			}
			if what != "" {
				add(p, what)
			} else if ch.From.IsZero() && !ch.To.IsZero() && contents {
				envEvents = append(envEvents, ch)
			}
		}
	}
	envProblems, err := st.envs(repo, changes, envChanges, envEvents, contents)
	if err != nil {
		return err
	}
	problems = append(problems, envProblems...)
	if len(problems) > 0 {
		st.finding(info, problems...)
	}
	return nil
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
			if err := validRecord(repo, p, ch.To); err != nil {
				st.exclude(p, to)
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
	st.finding(commit, Problem{Path: path, What: BadRecord + ": " + why.Error()})
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
	lastValid := func() {
		if st.Config == "" && !ch.From.IsZero() {
			st.Config = ch.From.String()
		}
	}
	if ch.To.IsZero() {
		lastValid()
		return ConfigGone, nil
	}
	data, err := repo.ReadBlob(ch.To)
	if err != nil {
		return "", err
	}
	if _, err := config.Parse(data); err != nil {
		lastValid()
		return BadConfig + ": " + err.Error(), nil
	}
	st.Config = ""
	return "", nil
}

// envs applies the rules to the env files a commit changed: each needs an
// env event of its app in the same commit whose digest is the new file's.
// Reading the commit's added records, it also finds env events whose file
// the commit did not change (only when contents are checked).
func (st *State) envs(repo *gitrepo.Repo, all, envChanges, added []gitrepo.Change, contents bool) ([]Problem, error) {
	if len(envChanges) == 0 && !contents {
		return nil, nil
	}
	// The env events the commit adds, by app: read only the records of
	// apps whose env file changed, unless contents are checked anyway.
	changedApps := map[projects.Address]bool{}
	for _, ch := range envChanges {
		a, _ := projects.ParseEnvPath(ch.Path)
		changedApps[a] = true
	}
	candidates := added
	if !contents {
		for _, ch := range all {
			if rec, err := projects.ParseRecordPath(ch.Path); err == nil && ch.From.IsZero() && !ch.To.IsZero() && changedApps[rec.Address] {
				candidates = append(candidates, ch)
			}
		}
	}
	digests := map[projects.Address]map[string]bool{}
	events := map[projects.Address][]gitrepo.Change{}
	for _, ch := range candidates {
		data, err := repo.ReadBlob(ch.To)
		if err != nil {
			return nil, err
		}
		ev, err := record.Unmarshal(data)
		if err != nil || ev.GetKind() != metav1.Kind_KIND_ENV {
			continue
		}
		a := record.Address(ev)
		if digests[a] == nil {
			digests[a] = map[string]bool{}
		}
		digests[a][ev.GetEnvDigest()] = true
		events[a] = append(events[a], ch)
	}
	var problems []Problem
	described := map[projects.Address]bool{}
	for _, ch := range envChanges {
		a, _ := projects.ParseEnvPath(ch.Path)
		lastValid := func() {
			if st.Envs == nil {
				st.Envs = map[string]string{}
			}
			if _, ok := st.Envs[ch.Path]; !ok {
				st.Envs[ch.Path] = ch.From.String()
			}
		}
		if ch.To.IsZero() {
			lastValid()
			problems = append(problems, Problem{Path: ch.Path, What: EnvDeleted})
			continue
		}
		if last, ok := st.Envs[ch.Path]; ok && last == ch.To.String() {
			// Put back as its last valid commit left it: that mends it.
			delete(st.Envs, ch.Path)
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
		described[a] = true
		delete(st.Envs, ch.Path)
	}
	if contents {
		for a, evs := range events {
			if described[a] || changedApps[a] {
				continue
			}
			// An env event says the file changed: without the file it is
			// not folded, or the head would name an env nobody has.
			for _, ch := range evs {
				st.exclude(ch.Path, ch.To.String())
				problems = append(problems, Problem{Path: ch.Path, What: EventNoEnv})
			}
		}
	}
	return problems, nil
}

// validRecord says why the blob at a record path is not a valid event
// there, nil when it is.
func validRecord(repo *gitrepo.Repo, p string, blob gitrepo.Hash) error {
	data, err := repo.ReadBlob(blob)
	if err != nil {
		return err
	}
	ev, err := record.Unmarshal(data)
	if err != nil {
		return err
	}
	return record.CheckPath(ev, p)
}

func isEnvPath(p string) bool {
	_, err := projects.ParseEnvPath(p)
	return err == nil
}
