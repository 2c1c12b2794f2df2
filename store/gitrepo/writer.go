package gitrepo

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// writer stores new objects and remembers them so they can be made durable
// before the branch points at them. It reads the trees it changes through
// obj; the caller holds Repo.mu.
type writer struct {
	st      storer.EncodedObjectStorer
	obj     *objects
	written []plumbing.Hash
	// displaced are the paths of files set replaced by a directory.
	displaced []string
	// signer signs each commit written; nil for none.
	signer signing.Signer
}

func (r *Repo) newWriter() *writer { return &writer{st: r.st, obj: r.obj, signer: r.signer} }

func (w *writer) store(o plumbing.EncodedObject) (plumbing.Hash, error) {
	h, err := w.st.SetEncodedObject(o)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write %s object: %w", o.Type(), err)
	}
	w.written = append(w.written, h)
	return h, nil
}

func (w *writer) blob(data []byte) (plumbing.Hash, error) {
	o := w.st.NewEncodedObject()
	o.SetType(plumbing.BlobObject)
	o.SetSize(int64(len(data)))
	wr, err := o.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := wr.Write(data); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := wr.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.store(o)
}

// commit writes c, signed when the repository has a signer: every commit
// meta makes (Commit, Replay, Build) is written here. A signature that
// fails writes no commit.
func (w *writer) commit(c *object.Commit) (plumbing.Hash, error) {
	if w.signer != nil {
		if err := sign(w.signer, c); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	o := w.st.NewEncodedObject()
	if err := c.Encode(o); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.store(o)
}

// set returns the id of tree with the file at path set to e (nil removes
// it; directories left empty go too, as git keeps none). replace says
// whether an existing file may be replaced.
func (w *writer) set(tree plumbing.Hash, path []string, e *object.TreeEntry, replace bool) (plumbing.Hash, error) {
	return w.setIn(tree, "", path, e, replace)
}

// setIn is set on the tree at dir.
func (w *writer) setIn(tree plumbing.Hash, dir string, path []string, e *object.TreeEntry, replace bool) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !tree.IsZero() {
		t, err := w.obj.tree(tree)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = t.Entries
	}
	name := path[0]
	at := -1
	for i, x := range entries {
		if x.Name == name {
			at = i
			break
		}
	}
	var entry *object.TreeEntry
	if len(path) == 1 {
		if at >= 0 && !replace && e != nil {
			return plumbing.ZeroHash, fmt.Errorf("%s is already committed", name)
		}
		if e != nil {
			entry = &object.TreeEntry{Name: name, Mode: e.Mode, Hash: e.Hash}
		}
	} else {
		sub := plumbing.ZeroHash
		if at >= 0 && entries[at].Mode == filemode.Dir {
			sub = entries[at].Hash
		} else if at >= 0 && e == nil {
			return tree, nil // nothing lies below a file
		} else if at >= 0 {
			// A file, link or submodule entry where a directory is needed
			// (a commit put one where the log keeps directories, and the
			// log's rules left it out): what is written below replaces it.
			w.displaced = append(w.displaced, dir+name)
		}
		h, err := w.setIn(sub, dir+name+"/", path[1:], e, replace)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if !h.IsZero() {
			entry = &object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		}
	}
	next := make([]object.TreeEntry, 0, len(entries)+1)
	next = append(next, entries...)
	switch {
	case at >= 0 && entry != nil:
		next[at] = *entry
	case at >= 0:
		next = append(next[:at], next[at+1:]...)
	case entry != nil:
		next = append(next, *entry)
	}
	if len(next) == 0 {
		return plumbing.ZeroHash, nil
	}
	sort.Slice(next, func(i, j int) bool { return treeKey(next[i]) < treeKey(next[j]) })
	o := w.st.NewEncodedObject()
	if err := (&object.Tree{Entries: next}).Encode(o); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.store(o)
}

// treeKey is what git sorts tree entries by: the name, with a slash after
// directory names.
func treeKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// sync makes every object written so far durable: the loose object files
// and the directories that name them. Objects already packed are skipped.
func (w *writer) sync(gitDir string) error {
	if len(w.written) > syncFSAbove {
		// A hub's group commit writes hundreds: one syncfs flushes them
		// all for the cost of a few fsyncs.
		if err := syncFS(filepath.Join(gitDir, "objects")); err == nil {
			w.written = w.written[:0]
			return nil
		}
	}
	dirs := map[string]bool{}
	for _, h := range w.written {
		hex := h.String()
		dir := filepath.Join(gitDir, "objects", hex[:2])
		if err := fsync(filepath.Join(dir, hex[2:])); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("sync object %s: %w", hex, err)
		}
		dirs[dir] = true
	}
	for dir := range dirs {
		if err := fsync(dir); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	w.written = w.written[:0]
	return nil
}

// syncFSAbove is how many objects are synced a file at a time; more are
// synced with the file system (syncFS), which costs about what a dozen
// fsyncs do here, but more on a file system with much else unwritten.
const syncFSAbove = 32

func fsync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
