package gitrepo

import (
	"slices"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// MaxLinear is how many commits WalkLinear reads in-process at most: the
// commits one other operator's append or a hand commit adds between two
// of this clone's, where a `git log` process would cost more than the
// reading.
const MaxLinear = 64

// WalkLinear is Walk for the common case, without starting git: when to
// descends from from (not zero) through at most MaxLinear commits of one
// parent each, it calls visit for each of them, oldest first, with the
// same changes Walk gives, and returns true. Otherwise it visits nothing
// and returns false, and the caller walks with Walk.
func (r *Repo) WalkLinear(from, to Hash, visit func(CommitInfo, []Change) error) (bool, error) {
	if from.IsZero() || to.IsZero() {
		return false, nil
	}
	var chain []CommitInfo
	var trees, parentTrees []Hash
	r.mu.Lock()
	for h := to; h != from; {
		if len(chain) == MaxLinear {
			r.mu.Unlock()
			return false, nil
		}
		c, err := r.obj.commit(h)
		if err != nil {
			r.mu.Unlock()
			return false, err
		}
		if len(c.ParentHashes) != 1 || c.Encoding != "" && !strings.EqualFold(string(c.Encoding), "UTF-8") {
			// A merge or the root, or a message git re-encodes: git
			// walks those.
			r.mu.Unlock()
			return false, nil
		}
		p, err := r.obj.commit(c.ParentHashes[0])
		if err != nil {
			r.mu.Unlock()
			return false, err
		}
		chain = append(chain, CommitInfo{ID: h, Parents: c.ParentHashes, Author: c.Author.Name + " <" + c.Author.Email + ">", When: c.Author.When.UTC().Truncate(1e9), Subject: subjectOf(c.Message)})
		trees, parentTrees = append(trees, c.TreeHash), append(parentTrees, p.TreeHash)
		h = c.ParentHashes[0]
	}
	changes := make([][]Change, len(chain))
	for i := range chain {
		var out []Change
		if err := r.walkDiff(parentTrees[i], trees[i], chain[i].ID, &out); err != nil {
			r.mu.Unlock()
			return false, err
		}
		sort.Slice(out, func(a, b int) bool { return out[a].Path < out[b].Path })
		changes[i] = out
	}
	r.mu.Unlock()
	for i := len(chain) - 1; i >= 0; i-- {
		if err := visit(chain[i], changes[i]); err != nil {
			return true, err
		}
	}
	return true, nil
}

// walkDiff adds to out what changed from tree a to tree b, as `git log
// --raw` says it: a side that is a submodule entry reads as absent
// (Change.Gitlink when it is the new side), a change of mode alone is a
// change.
func (r *Repo) walkDiff(a, b Hash, commit Hash, out *[]Change) error {
	return r.diffEntries(a, b, "", true, func(fc FileChange) error {
		fromSub, toSub := fc.fromMode == filemode.Submodule, fc.mode == filemode.Submodule
		if fromSub && toSub {
			return nil
		}
		ch := Change{Commit: commit, Path: fc.Path, From: fc.From, To: fc.To}
		if fromSub {
			ch.From = ZeroHash
		}
		if toSub {
			ch.To, ch.Gitlink = ZeroHash, true
		}
		*out = append(*out, ch)
		return nil
	})
}

// subjectOf is a commit message's subject as git's %s gives it (pretty.c,
// format_subject): blank lines first skipped, then the lines up to the
// next blank one, each without its trailing white space, joined by spaces.
func subjectOf(msg string) string {
	var lines []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimRight(line, " \t\r") // git's isspace: no \v, no \f
		if line == "" {
			if len(lines) > 0 {
				break
			}
			continue
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, " ")
}

// LinearAncestor says a is b, or reached from b through at most MaxLinear
// commits of one parent each: an answer to IsAncestor without starting
// git. False means only that this way does not tell.
func (r *Repo) LinearAncestor(a, b Hash) bool {
	_, ok := r.Linear(a, b)
	return ok
}

// Linear is Commits without starting git, for the common case: the
// commits after from up to to, oldest first, when to descends from from
// through at most MaxLinear commits of one parent each; ok false when it
// does not tell.
func (r *Repo) Linear(from, to Hash) (commits []Hash, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for h := to; h != from; {
		if len(commits) == MaxLinear {
			return nil, false
		}
		c, err := r.obj.commit(h)
		if err != nil || len(c.ParentHashes) != 1 {
			return nil, false
		}
		commits = append(commits, h)
		h = c.ParentHashes[0]
	}
	slices.Reverse(commits)
	return commits, true
}

// LinearMergeBase is MergeBase without starting git, for two tips that
// each go back to a common commit through at most MaxLinear commits of
// one parent each (two operators' appends on one tip); ok false when it
// does not tell.
func (r *Repo) LinearMergeBase(a, b Hash) (base Hash, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	onA := map[Hash]bool{}
	for i, h := 0, a; i <= MaxLinear; i++ {
		onA[h] = true
		c, err := r.obj.commit(h)
		if err != nil || len(c.ParentHashes) != 1 {
			break
		}
		h = c.ParentHashes[0]
	}
	for i, h := 0, b; i <= MaxLinear; i++ {
		if onA[h] {
			return h, true
		}
		c, err := r.obj.commit(h)
		if err != nil || len(c.ParentHashes) != 1 {
			return ZeroHash, false
		}
		h = c.ParentHashes[0]
	}
	return ZeroHash, false
}

// OnFirstParents says whether a is b or a commit of b's first-parent chain:
// the line of history b continues, as opposed to one a merge brought in
// beside it. It reads in-process, back from b until it meets a or the
// root.
func (r *Repo) OnFirstParents(a, b Hash) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for h := b; !h.IsZero(); {
		if h == a {
			return true, nil
		}
		c, err := r.obj.commit(h)
		if err != nil {
			return false, err
		}
		if len(c.ParentHashes) == 0 {
			return false, nil
		}
		h = c.ParentHashes[0]
	}
	return false, nil
}
