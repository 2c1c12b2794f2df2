package gitrepo

import (
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
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
		if err := r.walkDiff(parentTrees[i], trees[i], "", chain[i].ID, &out); err != nil {
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

// walkDiff adds to out what changed from tree a to tree b under prefix,
// as `git log --raw` says it: a file's side that is a submodule entry
// reads as absent (Change.Gitlink when it is the new side), a change of
// mode alone is a change.
func (r *Repo) walkDiff(a, b Hash, prefix string, commit Hash, out *[]Change) error {
	if a == b {
		return nil
	}
	ea, err := r.allEntries(a)
	if err != nil {
		return err
	}
	eb, err := r.allEntries(b)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for n := range ea {
		names[n] = true
	}
	for n := range eb {
		names[n] = true
	}
	for n := range names {
		x, inA := ea[n]
		y, inB := eb[n]
		p := path.Join(prefix, n)
		xDir, yDir := inA && x.Mode == filemode.Dir, inB && y.Mode == filemode.Dir
		var from, to Hash
		if xDir {
			from = x.Hash
		}
		if yDir {
			to = y.Hash
		}
		if xDir || yDir {
			if err := r.walkDiff(from, to, p, commit, out); err != nil {
				return err
			}
		}
		xFile, yFile := inA && !xDir, inB && !yDir
		if !xFile && !yFile {
			continue
		}
		if xFile && yFile && x.Hash == y.Hash && x.Mode == y.Mode {
			continue
		}
		ch := Change{Commit: commit, Path: p}
		if xFile && x.Mode != filemode.Submodule {
			ch.From = x.Hash
		}
		if yFile {
			if y.Mode == filemode.Submodule {
				ch.Gitlink = true
			} else {
				ch.To = y.Hash
			}
		}
		if xFile && yFile && x.Mode == filemode.Submodule && y.Mode == filemode.Submodule {
			continue
		}
		*out = append(*out, ch)
	}
	return nil
}

// allEntries are a tree's entries by name, submodule entries included.
func (r *Repo) allEntries(tree Hash) (map[string]object.TreeEntry, error) {
	out := map[string]object.TreeEntry{}
	if tree.IsZero() {
		return out, nil
	}
	t, err := r.obj.tree(tree)
	if err != nil {
		return nil, err
	}
	for _, e := range t.Entries {
		out[e.Name] = e
	}
	return out, nil
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
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, h := 0, b; i <= MaxLinear; i++ {
		if h == a {
			return true
		}
		c, err := r.obj.commit(h)
		if err != nil || len(c.ParentHashes) != 1 {
			return false
		}
		h = c.ParentHashes[0]
	}
	return false
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
