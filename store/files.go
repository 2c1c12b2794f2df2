package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/spf13/afero"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Files reads and writes event records in a log's work tree. It knows the
// layout and nothing of git; paths are slash-separated and relative to the
// work tree's root.
type Files struct {
	fs afero.Fs
}

// NewFiles uses fsys, rooted at the log's work tree.
func NewFiles(fsys afero.Fs) *Files { return &Files{fs: fsys} }

// Write stores ev's record at its path and returns the path and the bytes
// written. The file appears whole or not at all (written aside, synced,
// renamed into place) and an existing record is never replaced.
func (f *Files) Write(ev *metav1.Event) (string, []byte, error) {
	data, err := record.Marshal(ev)
	if err != nil {
		return "", nil, err
	}
	p := record.Path(ev)
	if _, err := f.fs.Stat(p); err == nil {
		return "", nil, fmt.Errorf("write %s: %w", p, fs.ErrExist)
	}
	if err := f.fs.MkdirAll(path.Dir(p), 0o755); err != nil {
		return "", nil, fmt.Errorf("write %s: %w", p, err)
	}
	tmp := tempPath(p)
	if err := writeSynced(f.fs, tmp, data); err != nil {
		f.fs.Remove(tmp)
		return "", nil, fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.fs.Rename(tmp, p); err != nil {
		f.fs.Remove(tmp)
		return "", nil, fmt.Errorf("write %s: %w", p, err)
	}
	return p, data, nil
}

func writeSynced(fsys afero.Fs, name string, data []byte) error {
	w, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// Put writes a file that a sync brings in, whole or not at all, with the
// given permissions.
func (f *Files) Put(p string, data []byte, perm os.FileMode) error {
	if err := f.fs.MkdirAll(path.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+".meta-tmp")
	f.fs.Remove(tmp)
	if err := writeSynced(f.fs, tmp, data); err != nil {
		f.fs.Remove(tmp)
		return err
	}
	if err := f.fs.Chmod(tmp, perm); err != nil {
		f.fs.Remove(tmp)
		return err
	}
	return f.fs.Rename(tmp, p)
}

// Delete removes a file a sync deletes; a missing file is fine.
func (f *Files) Delete(p string) error {
	if err := f.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// tempPath is where Write puts a record's bytes before renaming them into
// place: hidden, so listings skip it.
func tempPath(p string) string {
	return path.Join(path.Dir(p), "."+path.Base(p)[:len(path.Base(p))-len(projects.RecordExt)]+".tmp")
}

// Remove deletes a record that was written but never committed, and any
// temporary file a write of it left; committed records are never removed.
func (f *Files) Remove(p string) error {
	for _, name := range []string{p, tempPath(p)} {
		if err := f.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Read returns the raw bytes of the record at p.
func (f *Files) Read(p string) ([]byte, error) {
	return afero.ReadFile(f.fs, p)
}

// Apps lists every app directory in the log, sorted by address.
func (f *Files) Apps() ([]projects.Address, error) {
	var out []projects.Address
	for _, project := range f.names(projects.Root) {
		for _, env := range f.names(path.Join(projects.Root, project)) {
			for _, app := range f.names(path.Join(projects.Root, project, env)) {
				out = append(out, projects.Address{Project: project, Env: env, App: app})
			}
		}
	}
	return out, nil
}

// Find lists the addresses under which domain has a directory with
// something in it (git keeps no empty directories, so neither does a log).
func (f *Files) Find(domain string) ([]projects.Address, error) {
	var out []projects.Address
	for _, project := range f.names(projects.Root) {
		for _, env := range f.names(path.Join(projects.Root, project)) {
			a := projects.Address{Project: project, Env: env, App: domain}
			if len(f.names(a.Dir())) > 0 {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// RecordPaths lists the record files of one app, sorted.
func (f *Files) RecordPaths(a projects.Address) ([]string, error) {
	var out []string
	for _, month := range f.names(a.Dir()) {
		// Concatenation, not path.Join: this loop runs once per record on
		// every read, and the parts are already clean.
		dir := a.Dir() + "/" + month + "/"
		for _, name := range f.names(dir) {
			if strings.HasSuffix(name, projects.RecordExt) {
				out = append(out, dir+name)
			}
		}
	}
	return out, nil
}

// names lists the entries of dir that are not hidden (temporary files start
// with a dot), sorted; a missing directory has none. It reads names only:
// a stat per entry would cost more than the rest of a head.
func (f *Files) names(dir string) []string {
	d, err := f.fs.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil
	}
	out := names[:0]
	for _, n := range names {
		if !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
