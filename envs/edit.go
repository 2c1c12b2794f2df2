package envs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// An edit, as `kubectl edit` does it: the editor is opened again, rather
// than the edit thrown away, when what it saved does not read (with a
// header saying what is wrong, and where) and when another operator
// changed the env meanwhile (with the edit put on top of their change, and
// the keys both changed marked as git marks a conflict). Saving the file
// unchanged, or empty, leaves the env as it was. The operator's text is
// never lost: when meta must stop, it keeps it in a file of its own and
// names it.

// ErrCancelled: the operator left the editor without a change, or with
// the file empty, so nothing was written.
var ErrCancelled = errors.New("edit cancelled, no changes made")

// headerMark starts every line meta puts at the top of the file it hands
// the editor; they are dropped from what is saved.
const headerMark = "#~"

// Conflict markers, as git writes them.
const (
	markYours  = "<<<<<<< yours"
	markSplit  = "======="
	markTheirs = ">>>>>>> theirs"
)

// problemLines is how many lines the header of a file reopened for a fix
// has: what it says about line numbers counts them.
const problemLines = 3

// round says why the editor is open.
type round int

const (
	fresh   round = iota // on the env as it is
	fixing               // on an edit that does not read
	rebased              // on an edit put on top of another operator's change
)

// Edit decrypts the app's env into a private temporary file (mode 0600,
// under dir, "" for the system's), lets edit change it (an editor, run on
// its path), and commits what it saved; see above for when it opens the
// editor again. The temporary file is overwritten and removed whatever
// happens.
func (e *Envs) Edit(ctx context.Context, domain, dir string, edit func(path string) error, note Note) (*Result, error) {
	base, digest, _, err := e.Open(ctx, domain)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, "meta-env-")
	if err != nil {
		return nil, err
	}
	p := filepath.Join(tmp, domain+projects.EnvExt)
	defer func() {
		shred(p)
		os.RemoveAll(tmp)
	}()
	original := base.Bytes()
	// text is the operator's edit as last saved, without meta's header.
	var text []byte
	keep := func(cause error) error { return keepEdit(cause, dir, domain, text, original) }
	given, kind := original, fresh
	for {
		if err := os.WriteFile(p, given, 0o600); err != nil {
			return nil, keep(err)
		}
		editErr := edit(p)
		saved, readErr := os.ReadFile(p)
		if readErr == nil {
			text = withoutHeader(saved)
		}
		switch {
		case editErr != nil:
			return nil, keep(fmt.Errorf("%w; nothing was written", editErr))
		case readErr != nil:
			return nil, keep(fmt.Errorf("%w; nothing was written", readErr))
		case len(bytes.TrimSpace(text)) == 0:
			return nil, fmt.Errorf("%w: the file was empty", ErrCancelled)
		case bytes.Equal(saved, given) && kind == fresh:
			return nil, ErrCancelled
		case bytes.Equal(saved, given) && kind == fixing:
			_, problem := readEdit(text, 1)
			return nil, keep(fmt.Errorf("%w; saved unchanged, so nothing was written", problem))
		}
		// Saved unchanged after a rebase: the operator takes it as it is.
		plain, problem := readEdit(text, problemLines+1)
		if problem != nil {
			given, kind = append(problemHeader(problem), text...), fixing
			continue
		}
		note.Expect = digest
		res, err := e.Modify(ctx, &metav1.Address{App: domain}, "edit", note, func(dotenv.File, bool) (dotenv.File, error) { return plain, nil })
		if err == nil || errors.Is(err, store.ErrNoChange) {
			return res, err
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, keep(err)
		}
		// Modify fetched: the clone holds the change that came first.
		theirs, now, _, oerr := e.Open(ctx, domain)
		if oerr != nil || now == digest {
			return nil, keep(err)
		}
		merged, conflicts := dotenv.Merge(base, plain, theirs)
		who, change := e.changedBy(domain), dotenv.Diff(base, theirs)
		e.warn("%s changed the env of %s while you edited it (%s); opening your edit again, on top of their change", who, domain, summary(change))
		given, kind = append(rebaseHeader(who, change, conflicts), withConflicts(merged, conflicts, theirs)...), rebased
		base, digest = theirs, now
	}
}

// readEdit reads the operator's edit, whose first line is line first of
// the file they see: an unresolved conflict, or what dotenv refuses, is
// an error naming the line.
func readEdit(text []byte, first int) (dotenv.File, error) {
	for i, l := range strings.Split(string(text), "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "<<<<<<<") || t == markSplit || strings.HasPrefix(t, ">>>>>>>") {
			return dotenv.File{}, fmt.Errorf("your edit line %d: %w: an unresolved conflict: keep one of the lines between %q and %q, or none, and remove the markers", first+i, dotenv.ErrSyntax, markYours, markTheirs)
		}
	}
	return dotenv.ParseFrom("your edit", text, first)
}

// withoutHeader is data without the header lines meta put at its top.
func withoutHeader(data []byte) []byte {
	for bytes.HasPrefix(data, []byte(headerMark)) {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil
		}
		data = data[i+1:]
	}
	return data
}

// header is lines, each marked as meta's.
func header(lines ...string) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(headerMark + " " + l + "\n")
	}
	return b.Bytes()
}

// problemHeader says what is wrong with an edit: problemLines lines.
func problemHeader(problem error) []byte {
	return header(
		"meta: "+oneLine(problem.Error()),
		"Fix it and save. Saved unchanged, nothing is written (meta keeps your text",
		"in a file and names it); empty the file to cancel. Lines of "+headerMark+" are dropped.")
}

// rebaseHeader says who changed the env meanwhile, and how, and which keys
// the operator must settle.
func rebaseHeader(who string, theirs dotenv.Changes, conflicts []string) []byte {
	lines := []string{
		"meta: " + who + " changed this env while you edited it: " + summary(theirs) + ".",
		"Your edit is below, on top of their change.",
	}
	if len(conflicts) > 0 {
		lines = append(lines,
			"You both changed "+strings.Join(conflicts, ", ")+": keep one line of each between",
			fmt.Sprintf("%q and %q (or none), remove the markers, then save.", markYours, markTheirs))
	} else {
		lines = append(lines, "Save it as it is to commit it.")
	}
	lines = append(lines, "Empty the file to cancel. Lines of "+headerMark+" are dropped.")
	return header(lines...)
}

// withConflicts is merged as text, each key of conflicts between git's
// markers, the operator's line above their line (none for a side that
// removed it).
func withConflicts(merged dotenv.File, conflicts []string, theirs dotenv.File) []byte {
	if len(conflicts) == 0 {
		return merged.Bytes()
	}
	block := func(b *bytes.Buffer, key string) {
		b.WriteString(markYours + "\n")
		if line, ok := merged.Line(key); ok {
			b.WriteString(line + "\n")
		}
		b.WriteString(markSplit + "\n")
		if line, ok := theirs.Line(key); ok {
			b.WriteString(line + "\n")
		}
		b.WriteString(markTheirs + "\n")
	}
	in := map[string]bool{}
	for _, k := range conflicts {
		in[k] = true
	}
	var b bytes.Buffer
	for _, l := range merged.Lines {
		if l.Comment || !in[l.Key] {
			b.Write(dotenv.File{Lines: []dotenv.Line{l}}.Bytes())
			continue
		}
		block(&b, l.Key)
		delete(in, l.Key)
	}
	for _, k := range conflicts {
		if in[k] {
			// The operator removed it; they changed it.
			block(&b, k)
		}
	}
	return b.Bytes()
}

// summary names the keys of c: "added A; changed B, C; removed D".
func summary(c dotenv.Changes) string {
	var parts []string
	for _, s := range []struct {
		what string
		keys []string
	}{{"added", c.Added}, {"changed", c.Changed}, {"removed", c.Removed}} {
		if len(s.keys) > 0 {
			parts = append(parts, s.what+" "+strings.Join(s.keys, ", "))
		}
	}
	if len(parts) == 0 {
		return "no key, only its comments or its readers"
	}
	return strings.Join(parts, "; ")
}

// changedBy says who wrote the app's env last, and when, as far as this
// clone knows.
func (e *Envs) changedBy(domain string) string {
	h, err := e.Store.Head(domain)
	if err != nil || h.EnvChanged == nil {
		return "another operator"
	}
	return fmt.Sprintf("%s (env event %s, %s)", h.EnvChanged.Operator, h.EnvChanged.EventID, h.EnvChanged.Time.Format("2006-01-02 15:04Z"))
}

// keepEdit is cause, once the operator's text (when they changed anything)
// is kept in a private file of its own beside where the edit was made, and
// named.
func keepEdit(cause error, dir, domain string, text, original []byte) error {
	if text == nil || bytes.Equal(text, original) {
		return cause
	}
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "meta-env-edit-"+domain+"-*"+projects.EnvExt)
	if err != nil {
		return fmt.Errorf("%w; and keeping your edit failed: %v", cause, err)
	}
	_, err = f.Write(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("%w; and keeping your edit failed: %v", cause, err)
	}
	return fmt.Errorf("%w; your edit is kept in %s (plain text, mode 0600: remove it when done)", cause, f.Name())
}

// oneLine is s on one line, for a header line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (e *Envs) warn(format string, args ...any) {
	if e.Warn != nil {
		e.Warn(format, args...)
	}
}

// shred overwrites a file before removing it, so that a plain-text env
// does not linger in freed blocks of a disk-backed temporary directory.
func shred(p string) {
	if fi, err := os.Stat(p); err == nil {
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			f.Write(make([]byte, fi.Size()))
			f.Sync()
			f.Close()
		}
	}
	os.Remove(p)
}
