package gitrepo

import (
	"bufio"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"

	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo/internal/gitindex"
)

// Stage records committed work-tree files in the index as they are, for
// files a sync wrote and for a commit whose index update was interrupted.
func (r *Repo) Stage(paths ...string) error {
	files := make([]File, 0, len(paths))
	for _, p := range paths {
		data, err := readWorkFile(filepath.Join(r.root, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		files = append(files, File{Path: p, Data: data})
	}
	if len(files) == 0 {
		return nil
	}
	return r.stage(files)
}

// readWorkFile is a work tree file's content as git hashes it: a
// symbolic link's is the path it names.
func readWorkFile(p string) ([]byte, error) {
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(p)
		return []byte(target), err
	}
	return os.ReadFile(p)
}

// Unstage drops paths from the index, for files a sync deleted.
func (r *Repo) Unstage(paths ...string) error {
	if len(paths) == 0 {
		return nil
	}
	return gitindex.Remove(filepath.Join(r.gitDir, "index"), paths...)
}

// Others describes changes in the work tree that meta did not commit:
// files the branch tip tracks outside dir that are modified or deleted, and
// untracked, unignored entries at the top of the work tree. It reads the tip
// and those files, never dir or the index, so its cost does not grow with
// the log.
func (r *Repo) Others(dir string) []string {
	tip, err := r.Head()
	if err != nil {
		return []string{"cannot check for other changes: " + err.Error()}
	}
	tracked := map[string]Hash{}
	top := map[string]bool{dir: true, ".git": true}
	if !tip.IsZero() {
		r.mu.Lock()
		err = r.filesOutside(tip, dir, top, tracked)
		r.mu.Unlock()
		if err != nil {
			return []string{"cannot check for other changes: " + err.Error()}
		}
	}
	// What differs from the tip, and then, only for those, what the index
	// says: a change someone staged with git add is theirs as much as an
	// unstaged one, but they should read which it is.
	type change struct {
		path    string
		work    Hash // zero: deleted, or unreadable
		missing bool
		dir     bool
	}
	var changes []change
	for p, blob := range tracked {
		data, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, os.ErrNotExist):
			changes = append(changes, change{path: p, missing: true})
		case err != nil:
			changes = append(changes, change{path: p})
		case BlobID(data) != blob:
			changes = append(changes, change{path: p, work: BlobID(data)})
		}
	}
	ignored := r.ignoreMatcher()
	entries, _ := os.ReadDir(r.root)
	var untracked []change
	for _, e := range entries {
		if !top[e.Name()] && !ignored.Match([]string{e.Name()}, e.IsDir()) {
			untracked = append(untracked, change{path: e.Name(), dir: e.IsDir()})
		}
	}
	if len(changes)+len(untracked) == 0 {
		return nil
	}
	staged, err := gitindex.Lookup(filepath.Join(r.gitDir, "index"), func(p string) bool {
		if _, ok := tracked[p]; ok {
			return true
		}
		top, _, _ := strings.Cut(p, "/")
		return slices.ContainsFunc(untracked, func(c change) bool { return c.path == top })
	})
	if err != nil {
		staged = nil // said as unstaged, rather than not at all
	}
	var out []string
	for _, c := range changes {
		inIndex, indexed := staged[c.path]
		stagedChange := staged != nil && (!indexed || Hash(inIndex) != tracked[c.path])
		switch {
		case c.missing && stagedChange:
			out = append(out, "deleted (staged): "+c.path)
		case c.missing:
			out = append(out, "deleted: "+c.path)
		case c.work.IsZero():
			out = append(out, "unreadable: "+c.path)
		case stagedChange && Hash(inIndex) == c.work:
			out = append(out, "modified (staged): "+c.path)
		case stagedChange:
			out = append(out, "modified (partly staged): "+c.path)
		default:
			out = append(out, "modified: "+c.path)
		}
	}
	for _, c := range untracked {
		name := c.path
		if c.dir {
			name += "/"
		}
		_, exact := staged[c.path]
		inside := slices.ContainsFunc(slices.Collect(maps.Keys(staged)), func(p string) bool { return strings.HasPrefix(p, c.path+"/") })
		if exact || inside {
			out = append(out, "new (staged): "+name)
		} else {
			out = append(out, "untracked: "+name)
		}
	}
	sort.Strings(out)
	return out
}

// filesOutside collects the regular files of commit's tree that are not
// under dir, and notes every top-level name. The caller holds r.mu.
func (r *Repo) filesOutside(commit Hash, dir string, top map[string]bool, files map[string]Hash) error {
	tree, err := r.treeOf(commit)
	if err != nil {
		return err
	}
	root, err := r.obj.tree(tree)
	if err != nil {
		return err
	}
	for _, e := range root.Entries {
		top[e.Name] = true
		switch {
		case e.Name == dir:
		case e.Mode == filemode.Dir:
			err = r.diffTrees(ZeroHash, e.Hash, e.Name, func(c FileChange) error {
				files[c.Path] = c.To
				return nil
			})
		case e.Mode == filemode.Regular || e.Mode == filemode.Executable:
			files[e.Name] = e.Hash
		}
		if err != nil {
			return err
		}
	}
	return nil
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
