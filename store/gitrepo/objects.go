package gitrepo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/objfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
)

// objects reads a repository's objects. A loose object (everything meta
// wrote itself) is read in-process with go-git's loose-object reader; a
// packed one (everything a clone or `git gc` brought) through one
// long-lived `git cat-file --batch`, started on first need. go-git would
// read packed objects too, but it loads a pack's whole index first: 100 ms
// for a pack of a 100k-event log, paid by every process on its first read,
// where git maps the index and costs one process start. The caller holds
// Repo.mu.
type objects struct {
	root string
	dot  *dotgit.DotGit
	cat  *catFile
	// trees keeps decoded trees, which never change, for the paths every
	// command walks (the root, projects/, a project, an env).
	trees map[Hash]*object.Tree
}

// maxTrees bounds the decoded-tree memo: a listing of every app of a
// large log touches a few thousand trees.
const maxTrees = 4096

func newObjects(root string, dot *dotgit.DotGit) *objects {
	return &objects{root: root, dot: dot, trees: map[Hash]*object.Tree{}}
}

// raw returns an object's type and content; plumbing.ErrObjectNotFound
// when the repository has no such object.
func (o *objects) raw(h Hash) (plumbing.ObjectType, []byte, error) {
	f, err := o.dot.Object(h)
	if err == nil {
		defer f.Close()
		r, err := objfile.NewReader(f)
		if err != nil {
			return 0, nil, fmt.Errorf("read object %s: %w", h, err)
		}
		defer r.Close()
		t, size, err := r.Header()
		if err != nil {
			return 0, nil, fmt.Errorf("read object %s: %w", h, err)
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return 0, nil, fmt.Errorf("read object %s: %w", h, err)
		}
		return t, data, nil
	}
	if !os.IsNotExist(err) {
		return 0, nil, fmt.Errorf("read object %s: %w", h, err)
	}
	if o.cat == nil {
		if o.cat, err = startCatFile(o.root); err != nil {
			return 0, nil, err
		}
	}
	t, data, err := o.cat.read(h)
	if err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
		o.cat.close() // its stream may be out of step: start afresh next time
		o.cat = nil
	}
	return t, data, err
}

// has says whether the repository holds object h: a loose one is found
// without reading it, a packed one is read (through cat-file).
func (o *objects) has(h Hash) bool {
	if _, err := o.dot.ObjectStat(h); err == nil {
		return true
	}
	_, _, err := o.raw(h)
	return err == nil
}

// typed reads an object that must be of type want.
func (o *objects) typed(h Hash, want plumbing.ObjectType) (plumbing.EncodedObject, error) {
	t, data, err := o.raw(h)
	if err != nil {
		return nil, err
	}
	if t != want {
		return nil, fmt.Errorf("object %s is a %s, not a %s", h, t, want)
	}
	mem := &plumbing.MemoryObject{}
	mem.SetType(t)
	mem.Write(data)
	return mem, nil
}

func (o *objects) tree(h Hash) (*object.Tree, error) {
	if t, ok := o.trees[h]; ok {
		return t, nil
	}
	enc, err := o.typed(h, plumbing.TreeObject)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	t := &object.Tree{}
	if err := t.Decode(enc); err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	if len(o.trees) >= maxTrees {
		clear(o.trees)
	}
	o.trees[h] = t
	return t, nil
}

func (o *objects) commit(h Hash) (*object.Commit, error) {
	enc, err := o.typed(h, plumbing.CommitObject)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	c := &object.Commit{}
	if err := c.Decode(enc); err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return c, nil
}

func (o *objects) blob(h Hash) ([]byte, error) {
	t, data, err := o.raw(h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	if t != plumbing.BlobObject {
		return nil, fmt.Errorf("read blob %s: it is a %s", h, t)
	}
	return data, nil
}

func (o *objects) close() {
	if o.cat != nil {
		o.cat.close()
		o.cat = nil
	}
}

// catFile is a running `git cat-file --batch`: object ids in, headers and
// contents out, one at a time.
type catFile struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startCatFile(root string) (*catFile, error) {
	cmd := command(context.Background(), root, "cat-file", "--batch")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start git cat-file: %w", err)
	}
	return &catFile{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 64<<10)}, nil
}

func (c *catFile) read(h Hash) (plumbing.ObjectType, []byte, error) {
	if _, err := io.WriteString(c.in, h.String()+"\n"); err != nil {
		return 0, nil, fmt.Errorf("git cat-file: %w", err)
	}
	header, err := c.out.ReadString('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("git cat-file: %w", err)
	}
	f := strings.Fields(header)
	if len(f) == 2 && f[1] == "missing" {
		return 0, nil, fmt.Errorf("object %s: %w", h, plumbing.ErrObjectNotFound)
	}
	if len(f) != 3 {
		return 0, nil, fmt.Errorf("git cat-file: unexpected %q", header)
	}
	t, err := plumbing.ParseObjectType(f[1])
	if err != nil {
		return 0, nil, fmt.Errorf("git cat-file: %q: %w", header, err)
	}
	size, err := strconv.Atoi(f[2])
	if err != nil || size < 0 {
		return 0, nil, fmt.Errorf("git cat-file: unexpected %q", header)
	}
	data := make([]byte, size+1) // the content and its closing newline
	if _, err := io.ReadFull(c.out, data); err != nil {
		return 0, nil, fmt.Errorf("git cat-file: %w", err)
	}
	return t, data[:size], nil
}

func (c *catFile) close() {
	c.in.Close()
	c.cmd.Wait()
}

// RawCommit returns commit h's object as git stores it (what `git cat-file
// commit` prints): what its signature, if any, is checked over.
func (r *Repo) RawCommit(h Hash) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, data, err := r.obj.raw(h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	if t != plumbing.CommitObject {
		return nil, fmt.Errorf("object %s is a %s, not a commit", h, t)
	}
	return data, nil
}
