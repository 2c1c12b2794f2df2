package gitrepo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CommitInfo is one commit as a walk of history sees it.
type CommitInfo struct {
	ID      Hash
	Parents []Hash
	// Author is "Name <email>".
	Author  string
	When    time.Time
	Subject string
}

// Walk calls visit for each commit reachable from to and not from from
// (from may be zero: all of to's history), parents before children, with
// every file it adds, changes or deletes: against each of its parents for
// a merge (one parent after the other), against nothing for a root commit.
// It reads history through `git rev-list` and `git diff-tree` (walk), with
// paths as git has them (-z: no quoting), and stops at visit's first error.
func (r *Repo) Walk(ctx context.Context, from, to Hash, visit func(CommitInfo, []Change) error) error {
	return r.walk(ctx, from, to, nil, visit)
}

// WalkPaths is Walk limited to the commits that change paths (files or
// directories), each with its changes under them.
func (r *Repo) WalkPaths(ctx context.Context, from, to Hash, paths []string, visit func(CommitInfo, []Change) error) error {
	return r.walk(ctx, from, to, paths, visit)
}

// Introduced finds the commit reachable from to that wrote blob at path:
// who to ask about a record. It is the zero CommitInfo when none did.
func (r *Repo) Introduced(ctx context.Context, to Hash, path string, blob Hash) (CommitInfo, error) {
	var found CommitInfo
	err := r.walk(ctx, ZeroHash, to, []string{path}, func(info CommitInfo, changes []Change) error {
		for _, ch := range changes {
			if ch.Path == path && ch.To == blob && found.ID.IsZero() {
				found = info
			}
		}
		return nil
	})
	return found, err
}

// walkChunk is how many commits one `git diff-tree` process of a walk
// diffs. git keeps every object it reads until it exits, so one `git log`
// over a whole history grew with it (2.5 GB at a million commits, most of
// a verify's memory); a process per chunk bounds it, for a few
// milliseconds of process start a chunk.
var walkChunk = 8192

// walk lists the commits in order with `git rev-list`, streamed, and has
// them diffed a chunk at a time by `git diff-tree --stdin`, whose output
// is what `git log --raw` of the same commits prints, byte for byte.
func (r *Repo) walk(ctx context.Context, from, to Hash, paths []string, visit func(CommitInfo, []Change) error) error {
	if to.IsZero() || from == to {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	spec := to.String()
	if !from.IsZero() {
		spec = from.String() + ".." + to.String()
	}
	args := []string{"rev-list", "--reverse", "--topo-order"}
	var limit []string
	if len(paths) > 0 {
		args = append(args, "--full-history")
		limit = append([]string{"--"}, paths...)
	}
	rev := command(ctx, r.root, append(append(args, spec), limit...)...)
	out, err := rev.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	rev.Stderr = &stderr
	if err := rev.Start(); err != nil {
		return err
	}
	commits := bufio.NewScanner(out)
	var chunk bytes.Buffer
	n := 0
	diff := func() error {
		if n == 0 {
			return nil
		}
		err := r.diffChunk(ctx, chunk.Bytes(), limit, visit)
		chunk.Reset()
		n = 0
		return err
	}
	var walkErr error
	for walkErr == nil && commits.Scan() {
		chunk.Write(commits.Bytes())
		chunk.WriteByte('\n')
		if n++; n == walkChunk {
			walkErr = diff()
		}
	}
	if walkErr == nil {
		walkErr = diff()
	}
	if walkErr != nil {
		cancel()
		rev.Wait()
		return walkErr
	}
	if err := rev.Wait(); err != nil {
		return fmt.Errorf("git rev-list: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return commits.Err()
}

// diffChunk calls visit for each of the commits (ids, one a line) with
// its changes, from one `git diff-tree --stdin`; limit is "--" and the
// paths a walk is limited to, or nothing. A commit is never split across
// two calls, so each is visited whole.
func (r *Repo) diffChunk(ctx context.Context, commits []byte, limit []string, visit func(CommitInfo, []Change) error) error {
	// --always prints a commit that changes nothing (an empty commit, a
	// merge the same as a parent) as git log does.
	args := append([]string{"diff-tree", "--stdin", "--always", "-r", "-z", "--no-color", "--raw", "-m", "--root", "--no-renames", "--no-abbrev",
		"--format=commit %H %P%x1f%an <%ae>%x1f%at%x1f%s"}, limit...)
	cmd := command(ctx, r.root, args...)
	cmd.Stdin = bytes.NewReader(commits)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	sc.Split(splitNUL)
	var cur *CommitInfo
	var changes []Change
	section := 0 // which parent's diff (-m shows a merge once per parent)
	var visitErr error
	flush := func() {
		if cur != nil && visitErr == nil {
			visitErr = visit(*cur, changes)
		}
		cur, changes, section = nil, nil, 0
	}
	for visitErr == nil && sc.Scan() {
		tok := strings.TrimPrefix(sc.Text(), "\n")
		switch {
		case strings.HasPrefix(tok, "commit "):
			info, err := parseCommitHeader(strings.TrimPrefix(tok, "commit "))
			if err != nil {
				visitErr = err
				break
			}
			if cur != nil && cur.ID == info.ID {
				section++ // -m shows a merge once per parent
				continue
			}
			flush()
			cur = &info
		case strings.HasPrefix(tok, ":"):
			// :<old mode> <new mode> <old blob> <new blob> <status>, then
			// the path as the next NUL-separated token.
			f := strings.Fields(tok)
			if !sc.Scan() {
				break
			}
			path := sc.Text()
			if len(f) < 5 || cur == nil || f[0] == ":160000" && f[1] == "160000" {
				continue
			}
			// A submodule entry is no file: the side that is one reads as
			// absent, so a record replaced by one is seen deleted.
			ch := Change{Commit: cur.ID, Path: path, From: NewHash(f[2]), To: NewHash(f[3]), Parent: section}
			if f[0] == ":160000" {
				ch.From = ZeroHash
			}
			if f[1] == "160000" {
				ch.To, ch.Gitlink = ZeroHash, true
			}
			changes = append(changes, ch)
		}
	}
	flush()
	if visitErr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return visitErr
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git diff-tree: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return sc.Err()
}

func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// parseCommitHeader reads "<id> <parent>...\x1f<author>\x1f<unix time>\x1f<subject>".
func parseCommitHeader(s string) (CommitInfo, error) {
	f := strings.SplitN(s, "\x1f", 4)
	if len(f) != 4 {
		return CommitInfo{}, fmt.Errorf("git diff-tree: unexpected commit line %q", s)
	}
	ids := strings.Fields(f[0])
	if len(ids) == 0 || !IsHash(ids[0]) {
		return CommitInfo{}, fmt.Errorf("git diff-tree: unexpected commit line %q", s)
	}
	info := CommitInfo{ID: NewHash(ids[0]), Author: f[1], Subject: f[3]}
	for _, p := range ids[1:] {
		info.Parents = append(info.Parents, NewHash(p))
	}
	if sec, err := strconv.ParseInt(f[2], 10, 64); err == nil {
		info.When = time.Unix(sec, 0).UTC()
	}
	return info, nil
}
