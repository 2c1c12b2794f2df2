package gitrepo

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/object"

	"git.coopcloud.tech/coop-cloud/meta/store/gitindex"
)

// Has reports whether commit's tree holds a file at path.
func (r *Repo) Has(commit plumbing.Hash, path string) (bool, error) {
	if commit.IsZero() {
		return false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := object.GetCommit(r.st, commit)
	if err != nil {
		return false, fmt.Errorf("read commit %s: %w", commit, err)
	}
	dir, name := filepath.ToSlash(filepath.Dir(path)), filepath.Base(path)
	tree, err := r.subtree(c.TreeHash, dir)
	if err != nil || tree.IsZero() {
		return false, err
	}
	t, err := object.GetTree(r.st, tree)
	if err != nil {
		return false, fmt.Errorf("read tree %s: %w", tree, err)
	}
	for _, e := range t.Entries {
		if e.Name == name && e.Mode != filemode.Dir {
			return true, nil
		}
	}
	return false, nil
}

// Restage records a committed work-tree file in the index again, for when
// a commit's index update was interrupted.
func (r *Repo) Restage(path string) error {
	data, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(path)))
	if err != nil {
		return err
	}
	return r.stage([]File{{Path: path, Data: data}})
}

// Others describes changes in the work tree and index that meta did not
// commit: tracked files outside dir that are modified, deleted or staged,
// and untracked, unignored entries at the top of the work tree. It skips
// dir itself, where a full check would cost a scan of every record.
func (r *Repo) Others(dir string) []string {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	tracked, err := gitindex.List(filepath.Join(r.gitDir, "index"), func(p string) bool { return !strings.HasPrefix(p, prefix) })
	if err != nil {
		return []string{"cannot check for other changes: " + err.Error()}
	}
	tip, _ := r.Head()
	var out []string
	top := map[string]bool{strings.TrimSuffix(prefix, "/"): true, ".git": true}
	for _, t := range tracked {
		top[strings.SplitN(t.Path, "/", 2)[0]] = true
		if t.Stage != 0 {
			out = append(out, "unmerged: "+t.Path)
			continue
		}
		fi, err := os.Lstat(filepath.Join(r.root, filepath.FromSlash(t.Path)))
		switch {
		case err != nil:
			out = append(out, "deleted: "+t.Path)
		case !fi.ModTime().Equal(t.Mtime) || uint32(fi.Size()) != t.Size:
			out = append(out, "modified: "+t.Path)
		default:
			if blob, _ := r.blobAt(tip, t.Path); blob != plumbing.Hash(t.Hash) {
				out = append(out, "staged: "+t.Path)
			}
		}
	}
	ignored := r.ignoreMatcher()
	entries, _ := os.ReadDir(r.root)
	for _, e := range entries {
		if !top[e.Name()] && !ignored.Match([]string{e.Name()}, e.IsDir()) {
			out = append(out, "untracked: "+e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// blobAt is the blob at path in commit, zero if there is none.
func (r *Repo) blobAt(commit plumbing.Hash, path string) (plumbing.Hash, error) {
	if commit.IsZero() {
		return plumbing.ZeroHash, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := object.GetCommit(r.st, commit)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	t, err := c.Tree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	e, err := t.FindEntry(path)
	if err != nil {
		if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
			return plumbing.ZeroHash, nil
		}
		return plumbing.ZeroHash, err
	}
	return e.Hash, nil
}

// ignoreMatcher applies the top-level .gitignore and .git/info/exclude,
// which is all a check of top-level entries needs.
func (r *Repo) ignoreMatcher() gitignore.Matcher {
	var ps []gitignore.Pattern
	for _, f := range []string{filepath.Join(r.root, ".gitignore"), filepath.Join(r.gitDir, "info", "exclude")} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				ps = append(ps, gitignore.ParsePattern(line, nil))
			}
		}
		fh.Close()
	}
	return gitignore.NewMatcher(ps)
}
