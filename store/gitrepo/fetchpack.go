package gitrepo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrIncomplete means the remote sent commits without all the trees and
// files they name: it is damaged (or lies). Nothing of it was taken in:
// the remote-tracking ref did not move, and the next fetch tries again.
var ErrIncomplete = errors.New("remote incomplete")

// Why fetch-pack. After receiving a pack, `git fetch` checks that every
// object the new tips reach is there (`git rev-list --objects --stdin --not
// --all`), and that walk reads every local ref's tip tree in full. A log
// keeps one file per record, so the walk grows with the log: it was 547 of
// the 651 ms of fetching one new record into a clone of a log of 100,000,
// and git has no switch to skip it. `git fetch-pack` is the part of fetch
// that talks to the remote and writes the pack (index-pack or unpack-objects
// hash every object they write), without that walk and without moving
// refs; meta checks the new commits itself (checkConnected) and then moves
// the tracking ref. It speaks git's own transports only: http(s) and remote
// helpers still go through `git fetch` (nativeTransport says which).

// fetchPack fetches branch from url with git fetch-pack and moves the
// tracking ref to its tip once the new commits are known to be whole. It
// returns the tip, zero when the remote has no such branch (the tracking ref
// then stays as it was, as `git fetch` leaves it).
func (r *Repo) fetchPack(ctx context.Context, branch, url string) (Hash, error) {
	name := strings.TrimPrefix(branch, "refs/heads/")
	ref := trackingRef(branch)
	old, err := r.readRef(ref)
	if err != nil {
		return ZeroHash, err
	}
	// --thin, as git fetch asks: the remote may send deltas against
	// objects this clone has, which index-pack completes.
	args := []string{"fetch-pack", "--quiet", "--no-progress", "--thin"}
	if up := r.uploadPack(); up != "" {
		args = append(args, "--upload-pack="+up) // as git fetch honours it
	}
	out, err := r.git(ctx, append(args, url, branch)...)
	if err != nil {
		var ge *GitError
		// Without the branch, git says the first; an empty remote, over
		// protocol v0 (ssh, unless sshd accepts GIT_PROTOCOL), the second.
		if errors.As(err, &ge) && (strings.Contains(ge.Stderr, "no such remote ref") || strings.Contains(ge.Stderr, "no matching remote head")) {
			return ZeroHash, nil
		}
		return ZeroHash, fmt.Errorf("%w: fetch %s from %s: %w", ErrUnreachable, name, Remote, err)
	}
	var tip Hash
	for _, line := range strings.Split(out, "\n") {
		if h, name, ok := strings.Cut(strings.TrimSpace(line), " "); ok && name == branch && IsHash(h) {
			tip = NewHash(h)
		}
	}
	if tip.IsZero() {
		return ZeroHash, fmt.Errorf("%w: fetch %s from %s: git fetch-pack named no tip: %q", ErrUnreachable, name, Remote, out)
	}
	if tip == old {
		return tip, nil // connected when it was taken in
	}
	if !r.connectedLinear(tip, old) {
		if err := r.checkConnected(ctx, tip); err != nil {
			return ZeroHash, fmt.Errorf("fetch %s from %s (%s): %w; %s stays at %s", name, Remote, ShownURL(url), err, ref, short(old))
		}
	}
	// Forced, as the refspec +branch:ref was: a rewritten remote is seen as
	// it is, and callers compare with the tip they saw before. The old value
	// catches a git user's fetch racing this one.
	r.mu.Lock()
	_, err = r.updateRef(ref, old, tip, Signature{Name: "meta", When: time.Now()}, "meta: fetched from "+Remote)
	r.mu.Unlock()
	if err != nil {
		return ZeroHash, fmt.Errorf("fetch %s from %s: %w", name, Remote, err)
	}
	r.maintain(ctx)
	return tip, nil
}

// maintain runs git's automatic maintenance when it is due, as git fetch
// does after every fetch: in a clone only meta writes to, that was what
// packed the loose objects every append and sync leave. Whether it is due
// is estimated in-process, as git estimates it (builtin/gc.c) with the
// default limits, gc.auto (6700 loose objects: more than 27 in objects/17)
// and gc.autoPackLimit (50 packs), so that a fetch starts no process when
// it is not; git then decides with the configured ones (gc.auto=0 turns it
// off; a lower limit than the default waits until the default one is hit).
// A failure is git's to report on the next run: the fetch stands.
func (r *Repo) maintain(ctx context.Context) {
	objects := filepath.Join(r.gitDir, "objects")
	due := false
	if names, err := os.ReadDir(filepath.Join(objects, "17")); err == nil {
		n := 0
		for _, e := range names {
			if len(e.Name()) == 38 && IsHash("17"+e.Name()) {
				n++
			}
		}
		due = n > (6700+255)/256
	}
	if !due {
		if packs, err := filepath.Glob(filepath.Join(objects, "pack", "*.pack")); err == nil {
			n := 0
			for _, p := range packs {
				if !exists(strings.TrimSuffix(p, ".pack") + ".keep") {
					n++
				}
			}
			due = n > 50
		}
	}
	if due {
		r.git(ctx, "maintenance", "run", "--auto", "--quiet")
	}
}

// connectedLinear is checkConnected for the common case, in-process and
// without starting git: tip descends from a commit a local ref holds (known,
// the tracking ref's old tip, or HEAD) through at most MaxLinear commits of
// one parent each. It reads the trees that changed, which the sync then
// reads again from the tree memo, and checks the files they name are there.
// True means tip is whole; false means only that this way does not tell,
// missing objects included: checkConnected then answers and says what is
// missing.
func (r *Repo) connectedLinear(tip, known Hash) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	head, err := r.Head()
	if err != nil {
		return false
	}
	var chain []*object.Commit
	for h := tip; h != known && h != head; {
		if h.IsZero() || len(chain) == MaxLinear {
			return false
		}
		c, err := r.obj.commit(h)
		if err != nil || len(c.ParentHashes) != 1 {
			return false // missing, a merge or a root: git tells
		}
		chain = append(chain, c)
		h = c.ParentHashes[0]
	}
	for _, c := range chain {
		p, err := r.obj.commit(c.ParentHashes[0])
		if err != nil {
			return false
		}
		// diffEntries reads every tree that differs (and fails on a
		// missing one); the files it names are checked here.
		err = r.diffEntries(p.TreeHash, c.TreeHash, "", true, func(fc FileChange) error {
			if fc.To.IsZero() || fc.mode == filemode.Submodule || r.obj.has(fc.To) {
				return nil
			}
			return plumbing.ErrObjectNotFound
		})
		if err != nil {
			return false
		}
	}
	return true
}

// checkConnected makes sure every object tip reaches is in the repository,
// reading only what the commits new to it changed. It relies on what git
// relies on: whatever a local ref reaches is whole. Then, by induction from
// those commits (and from the empty tree, for commits with no parent), a
// new commit is whole when its parents are and every tree and file that
// differs from a parent's is there: the rest is the parent's. The commit
// walk fails on a missing commit and diff-tree on a missing tree it has to
// read; cat-file checks the files (and trees) the diffs name.
//
// It streams: rev-list feeds diff-tree, whose objects are fed to cat-file
// as they come, so that its memory stays flat however many commits are
// new (a first fetch of a million events held a gigabyte of diff-tree
// output and a map of every object). Where a missing object was met is
// looked up only when one is missing.
func (r *Repo) checkConnected(ctx context.Context, tip Hash) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	check := command(ctx, r.root, "cat-file", "--batch-check=%(objectname)")
	var checkErr bytes.Buffer
	check.Stderr = &checkErr
	in, err := check.StdinPipe()
	if err != nil {
		return err
	}
	out, err := check.StdoutPipe()
	if err != nil {
		return err
	}
	if err := check.Start(); err != nil {
		return fmt.Errorf("check the objects of the commits up to %s: %w", short(tip), err)
	}
	missing := make(chan string, 1) // the first object cat-file misses, or ""
	go func() {
		first := ""
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if h, ok := strings.CutSuffix(strings.TrimSpace(sc.Text()), " missing"); ok && first == "" {
				first = h
			}
		}
		missing <- first
	}()
	w := bufio.NewWriter(in)
	feedErr := r.newObjects(ctx, tip, func(h, _, _ string) bool {
		w.WriteString(h)
		return w.WriteByte('\n') == nil
	})
	if err := w.Flush(); err != nil && feedErr == nil {
		feedErr = err
	}
	in.Close()
	h := <-missing
	if err := check.Wait(); err != nil {
		return fmt.Errorf("check the objects of the commits up to %s: %w: %s", short(tip), err, strings.TrimSpace(checkErr.String()))
	}
	if feedErr != nil {
		return feedErr
	}
	if h == "" {
		return nil
	}
	// Where it was named first: a second walk, which stops there.
	commit, path := "", ""
	r.newObjects(ctx, tip, func(o, c, p string) bool {
		if o != h {
			return true
		}
		commit, path = c, p
		return false
	})
	return fmt.Errorf("%w: commit %s names %s as %s, and the remote did not send it", ErrIncomplete, short(NewHash(commit)), h, path)
}

// newObjects calls fn with each object the diffs of the commits tip has
// and no local ref reaches name (trees and files, not deletions nor
// submodules' commits), with the commit and path that name it, until fn
// says to stop. The commits and diffs stream from git processes piped
// one into the next: nothing grows with their number here.
func (r *Repo) newObjects(ctx context.Context, tip Hash, fn func(h, commit, path string) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	revList := command(ctx, r.root, "rev-list", tip.String(), "--not", "--all")
	// -m diffs a merge against each of its parents (one would do, but a
	// merge is rare in a log and this keeps the rule simple); --root diffs
	// a commit with no parent against the empty tree; -t names the trees
	// too, not only the files in them.
	diff := command(ctx, r.root, "diff-tree", "-r", "-t", "-m", "--root", "--no-renames", "--stdin")
	var revErr, diffErr bytes.Buffer
	revList.Stderr, diff.Stderr = &revErr, &diffErr
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	revList.Stdout, diff.Stdin = pw, pr
	out, err := diff.StdoutPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	if err := revList.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("%w: the commits up to %s: %w", ErrIncomplete, short(tip), err)
	}
	err = diff.Start()
	pr.Close()
	pw.Close()
	if err != nil {
		cancel()
		revList.Wait()
		return fmt.Errorf("%w: the trees of the commits up to %s: %w", ErrIncomplete, short(tip), err)
	}
	stopped := false
	var bad string
	commit := ""
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if line[0] != ':' { // "<commit>", or "<commit> (from <parent>)"
			commit, _, _ = strings.Cut(line, " ")
			continue
		}
		meta, path, _ := strings.Cut(line, "\t")
		f := strings.Fields(meta) // :old-mode new-mode old new status
		if len(f) < 5 {
			bad = line
			break
		}
		mode, h := f[1], f[3]
		if mode == "160000" || !IsHash(h) || NewHash(h).IsZero() {
			continue // a submodule's commit lives elsewhere; a deletion names nothing
		}
		if !fn(h, commit, path) {
			stopped = true
			break
		}
	}
	if stopped || bad != "" {
		cancel()
	}
	diffWait := diff.Wait()
	revWait := revList.Wait()
	switch {
	case stopped:
		return nil
	case bad != "":
		return fmt.Errorf("the trees of the commits up to %s: diff-tree said %q", short(tip), bad)
	// diff-tree's failure first: it stops at a missing tree while
	// rev-list may still be writing commits to it, and rev-list then dies
	// of the broken pipe, which names nothing.
	case diffWait != nil:
		return fmt.Errorf("%w: the trees of the commits up to %s: %w", ErrIncomplete, short(tip), &GitError{Args: diff.Args[1:], Stderr: strings.TrimSpace(diffErr.String()), Err: diffWait})
	case revWait != nil:
		return fmt.Errorf("%w: the commits up to %s: %w", ErrIncomplete, short(tip), &GitError{Args: revList.Args[1:], Stderr: strings.TrimSpace(revErr.String()), Err: revWait})
	}
	return sc.Err()
}

// uploadPack is remote.origin.uploadpack from the repository's config: the
// program git runs on the remote side, when the remote set it elsewhere.
func (r *Repo) uploadPack() string {
	data, err := os.ReadFile(filepath.Join(r.gitDir, "config"))
	if err != nil {
		return ""
	}
	cfg := gitconfig.NewConfig()
	if cfg.Unmarshal(data) != nil {
		return ""
	}
	return cfg.Raw.Section("remote").Subsection(Remote).Option("uploadpack")
}

// fetchURL is the URL git fetches origin from: the configured one, rewritten
// by url.<base>.insteadOf as git fetch would (from any config file).
func (r *Repo) fetchURL(ctx context.Context) (string, error) {
	out, err := r.git(ctx, "ls-remote", "--get-url", Remote)
	if err != nil {
		return "", fmt.Errorf("%w: the URL of %s: %w", ErrUnreachable, Remote, err)
	}
	return strings.TrimSpace(out), nil
}

// nativeTransport says whether git reaches url with its own protocol
// (upload-pack over a pipe to a local path, over ssh or git://), which
// fetch-pack speaks, by git's own rules (transport.c: transport_get): not
// "<helper>::<address>", not a scheme other than file, git and ssh (http(s)
// and other remote helpers), not a bundle file. A URL that would read as an
// option is left to git fetch, which refuses it.
func nativeTransport(dir, url string) bool {
	if url == "" || strings.HasPrefix(url, "-") {
		return false
	}
	i := 0
	for i < len(url) && isSchemeChar(i == 0, url[i]) {
		i++
	}
	if i > 0 && strings.HasPrefix(url[i:], "::") {
		return false // a remote helper
	}
	if i > 0 && strings.HasPrefix(url[i:], "://") {
		switch url[:i] {
		case "file", "git", "ssh", "git+ssh", "ssh+git":
			return true
		}
		return false // http(s), ftp(s) or a remote helper's scheme
	}
	colon, slash := strings.IndexByte(url, ':'), strings.IndexByte(url, '/')
	if colon < 0 || (slash >= 0 && slash < colon) { // a path, not user@host:path
		p := url
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return false // a bundle file
		}
	}
	return true
}

// isSchemeChar is git's is_urlschemechar: a letter first, then letters,
// digits, '+', '-' and '.'.
func isSchemeChar(first bool, c byte) bool {
	alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	if first {
		return alpha
	}
	return alpha || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}
