package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fetchWorld is a bare remote, a plain git clone of it that makes
// commits the way a person would, and a meta clone that fetches them.
type fetchWorld struct {
	remote, hand string
	r            *Repo
}

// newFetchWorld makes the world with one commit on main, fetched by r;
// url turns the remote's path into the URL r fetches from.
func newFetchWorld(t *testing.T, url func(t *testing.T, remote string) string) *fetchWorld {
	t.Helper()
	base := t.TempDir()
	w := &fetchWorld{remote: filepath.Join(base, "r.git"), hand: filepath.Join(base, "hand")}
	git(t, base, "init", "-q", "--bare", "-b", "main", w.remote)
	git(t, base, "clone", "-q", w.remote, w.hand)
	sh(t, w.hand, "git checkout -q -b main && mkdir -p projects/a && echo 1 > projects/a/1.pb && echo v: 1 > meta.yaml && git add . && git commit -qm one && git push -q origin main")
	r, err := Clone(context.Background(), url(t, w.remote), filepath.Join(base, "clone"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w.r = r
	return w
}

// tracking is the clone's remote-tracking ref of main.
func (w *fetchWorld) tracking(t *testing.T) Hash {
	t.Helper()
	h, err := w.r.RemoteTip()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func pathURL(t *testing.T, remote string) string { return remote }
func fileURL(t *testing.T, remote string) string { return "file://" + remote }

// daemonURL serves the remote's directory with git daemon on 127.0.0.1.
func daemonURL(t *testing.T, remote string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	d := exec.Command("git", "daemon", "--export-all", "--reuseaddr", "--informative-errors", "--base-path="+filepath.Dir(remote),
		"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), filepath.Dir(remote))
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill(); d.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("git daemon does not listen on %d", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("git://127.0.0.1:%d/%s", port, filepath.Base(remote))
}

var transports = []struct {
	name string
	url  func(t *testing.T, remote string) string
}{{"path", pathURL}, {"file://", fileURL}, {"git://", daemonURL}}

// Whatever the remote's history does, Fetch brings its tip, moves the
// tracking ref to it, and leaves a repository git finds whole: one new
// commit (checked in-process), more than MaxLinear (checked with git), a
// merge, a history rewritten to an unrelated one, a tip reset to a commit
// the clone has, a deleted branch (zero, and the tracking ref stays).
func TestFetchTakesWhatTheRemoteHas(t *testing.T) {
	many := "for i in $(seq 70); do echo $i > projects/a/m$i.pb; git add .; git commit -qm m$i; done"
	cases := []struct {
		name   string
		clone  string // a shell line run in the meta clone first
		hand   string // a shell line run in the hand clone; it pushes
		linear bool   // the in-process check answers
		empty  bool   // the remote no longer has main
	}{
		{"one commit", "", "echo 2 > projects/a/2.pb && git add . && git commit -qm two && git push -q", true, false},
		{"a new directory and a changed file", "", "mkdir -p projects/b/x && echo 3 > projects/b/x/3.pb && echo v: 2 > meta.yaml && git add . && git commit -qm three && git push -q", true, false},
		{"more commits than MaxLinear", "", many + " && git push -q", false, false},
		{"a merge", "", "git checkout -q -b side && echo s > projects/a/s.pb && git add . && git commit -qm s && git checkout -q main && echo 4 > projects/a/4.pb && git add . && git commit -qm four && git merge -q --no-edit side && git push -q origin main", false, false},
		{"an unrelated history", "", "git checkout -q --orphan new && git rm -rqf . && echo x > x.pb && git add . && git commit -qm x && git push -qf origin new:main", false, false},
		{"a tip the clone has on its branch", "echo c > c.pb && git add . && git commit -qm c && git push -q ../r.git HEAD:refs/heads/other",
			"git fetch -q origin other && git push -qf origin FETCH_HEAD:main", true, false},
		{"a deleted branch", "", "git -C ../r.git update-ref -d refs/heads/main", false, true},
	}
	for _, tr := range transports {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				w := newFetchWorld(t, tr.url)
				before := w.tracking(t)
				if tc.clone != "" {
					sh(t, w.r.Root(), tc.clone)
				}
				sh(t, w.hand, tc.hand)
				tip, err := w.r.Fetch(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if tc.empty {
					if !tip.IsZero() || w.tracking(t) != before {
						t.Fatalf("deleted branch: tip %s, tracking %s (was %s)", tip, w.tracking(t), before)
					}
					return
				}
				want := NewHash(git(t, w.remote, "rev-parse", "main"))
				if tip != want || w.tracking(t) != want {
					t.Fatalf("tip %s, tracking %s, remote has %s", tip, w.tracking(t), want)
				}
				git(t, w.r.Root(), "fsck", "--connectivity-only", "--no-progress")
				if got := w.r.connectedLinear(want, before); got != tc.linear {
					t.Errorf("the in-process check answers %v, want %v", got, tc.linear)
				}
			})
		}
	}
}

// An empty remote has no tip: zero, and no error, whichever protocol git
// speaks (over ssh it is v0 unless sshd accepts GIT_PROTOCOL, and v0 says
// it otherwise).
func TestFetchFromAnEmptyRemote(t *testing.T) {
	for _, version := range []string{"0", "1", "2"} {
		t.Run("protocol v"+version, func(t *testing.T) {
			base := t.TempDir()
			remote := filepath.Join(base, "r.git")
			git(t, base, "init", "-q", "--bare", "-b", "main", remote)
			r, err := Init(filepath.Join(base, "clone"), DefaultBranch)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.SetRemote(context.Background(), remote); err != nil {
				t.Fatal(err)
			}
			git(t, r.Root(), "config", "protocol.version", version)
			if tip, err := r.Fetch(context.Background()); err != nil || !tip.IsZero() {
				t.Fatalf("fetch of an empty remote: %s, %v", tip, err)
			}
		})
	}
}

// withholding points the clone's upload-pack at a wrapper that leaves
// filter's objects out of every pack it sends (blob:none: every file;
// tree:0: every tree): a pack git's fetch-pack takes without a word.
func withholding(t *testing.T, r *Repo, filter string) {
	t.Helper()
	dir := t.TempDir()
	hook, wrapper := filepath.Join(dir, "hook"), filepath.Join(dir, "upload-pack")
	os.WriteFile(hook, []byte("#!/bin/sh\nexec \"$@\" --filter="+filter+"\n"), 0o755)
	os.WriteFile(wrapper, []byte("#!/bin/sh\nexec git -c uploadpack.packObjectsHook="+hook+" upload-pack \"$@\"\n"), 0o755)
	git(t, r.Root(), "config", "remote.origin.uploadpack", wrapper)
}

// A remote that sends commits without the files or trees they name is
// refused, whichever check sees it (in-process for a few linear commits,
// git's diff-tree and cat-file for the rest): the error wraps
// ErrIncomplete and names the object, the tracking ref does not move, and
// once the remote sends everything the next fetch takes it all.
func TestFetchRefusesAnIncompleteRemote(t *testing.T) {
	many := "for i in $(seq 70); do echo $i > projects/a/m$i.pb; git add .; git commit -qm m$i; done"
	cases := []struct {
		name, filter, hand string
		names              string // what the error must name: "blob" (the new file's) or "tree"
	}{
		{"one commit without its file", "blob:none", "echo 2 > projects/a/2.pb && git add . && git commit -qm two", "blob"},
		{"one commit without its trees", "tree:0", "echo 2 > projects/a/2.pb && git add . && git commit -qm two", "tree"},
		{"many commits without their files", "blob:none", many, "blob"},
		{"a merge without its files", "blob:none", "git checkout -q -b side && echo s > projects/a/s.pb && git add . && git commit -qm s && git checkout -q main && echo 4 > projects/a/4.pb && git add . && git commit -qm four && git merge -q --no-edit side", "blob"},
		{"an unrelated history without its files", "blob:none", "git checkout -q --orphan new && git rm -rqf . && echo x > x.pb && git add . && git commit -qm x && git branch -qf main new && git checkout -q main", "blob"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newFetchWorld(t, pathURL)
			before := w.tracking(t)
			sh(t, w.hand, tc.hand+" && git push -qf origin main")
			withholding(t, w.r, tc.filter)
			_, err := w.r.Fetch(context.Background())
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("fetch of an incomplete pack: %v", err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), w.remote) {
				t.Errorf("the error does not name the remote: %v", err)
			}
			switch tc.names {
			case "blob":
				if !strings.Contains(err.Error(), "names ") || !strings.Contains(err.Error(), "did not send it") {
					t.Errorf("the error does not name the file: %v", err)
				}
			case "tree":
				if !strings.Contains(err.Error(), git(t, w.hand, "rev-parse", "main^{tree}")) {
					t.Errorf("the error does not name the tree: %v", err)
				}
			}
			if got := w.tracking(t); got != before {
				t.Fatalf("the tracking ref moved to %s (was %s)", got, before)
			}
			if w.r.connectedLinear(NewHash(git(t, w.remote, "rev-parse", "main")), before) {
				t.Fatal("the in-process check takes the incomplete commits for whole")
			}
			git(t, w.r.Root(), "config", "--unset", "remote.origin.uploadpack")
			tip, err := w.r.Fetch(context.Background())
			if want := NewHash(git(t, w.remote, "rev-parse", "main")); err != nil || tip != want || w.tracking(t) != want {
				t.Fatalf("fetch of the whole remote: %s, %v (remote has %s)", tip, err, want)
			}
			git(t, w.r.Root(), "fsck", "--connectivity-only", "--no-progress")
		})
	}
}

// A remote whose new commit names a file it does not have cannot even
// send it: the fetch fails (ErrUnreachable, with what git said), and
// nothing moves.
func TestFetchFromARemoteMissingAnObject(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			w := newFetchWorld(t, tr.url)
			before := w.tracking(t)
			missing := strings.Repeat("ab", 20)
			sh(t, w.remote, `sub=$(printf '100644 blob `+missing+`\tgone.pb\n' | git mktree --missing) &&
				root=$(printf '040000 tree '$sub'\tprojects\n' | git mktree) &&
				c=$(git commit-tree -p main -m broken $root) && git update-ref refs/heads/main $c`)
			_, err := w.r.Fetch(context.Background())
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), missing) {
				t.Fatalf("fetch from a broken remote: %v", err)
			}
			t.Log(err)
			if got := w.tracking(t); got != before {
				t.Fatalf("the tracking ref moved to %s (was %s)", got, before)
			}
			git(t, w.r.Root(), "fsck", "--connectivity-only", "--no-progress")
		})
	}
}

// A lock on the tracking ref that a killed git left half written is
// broken after the grace period, and the fetch goes through.
func TestFetchPastAHalfWrittenTrackingLock(t *testing.T) {
	w := newFetchWorld(t, pathURL)
	sh(t, w.hand, "echo 2 > projects/a/2.pb && git add . && git commit -qm two && git push -q")
	lock := filepath.Join(w.r.GitDir(), "refs", "remotes", "origin", "main.lock")
	if err := os.WriteFile(lock, []byte("3f2a"), 0o644); err != nil {
		t.Fatal(err)
	}
	tip, err := w.r.Fetch(context.Background())
	if want := NewHash(git(t, w.remote, "rev-parse", "main")); err != nil || tip != want || w.tracking(t) != want {
		t.Fatalf("fetch past a stale lock: %s, %v (remote has %s)", tip, err, want)
	}
	if exists(lock) {
		t.Fatal("the lock is still there")
	}
}

// A fetch that brings something runs git's automatic maintenance when it
// is due, as git fetch did: here 51 packs, past gc.autoPackLimit, which it
// packs into one.
func TestFetchRunsGitsMaintenanceWhenDue(t *testing.T) {
	w := newFetchWorld(t, pathURL)
	git(t, w.r.Root(), "config", "gc.autoDetach", "false") // so the test sees it done
	sh(t, w.r.Root(), "for i in $(seq 51); do echo $i | git hash-object -w --stdin | git pack-objects -q .git/objects/pack/pack >/dev/null; done")
	packs := func() int {
		p, _ := filepath.Glob(filepath.Join(w.r.GitDir(), "objects", "pack", "*.pack"))
		return len(p)
	}
	if n := packs(); n < 51 {
		t.Fatalf("%d packs made", n)
	}
	sh(t, w.hand, "echo 2 > projects/a/2.pb && git add . && git commit -qm two && git push -q")
	if _, err := w.r.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := packs(); n > 2 {
		t.Fatalf("%d packs after the fetch: no maintenance ran", n)
	}
	git(t, w.r.Root(), "fsck", "--connectivity-only", "--no-progress")
}

// nativeTransport follows git's rules for which URLs its own protocol
// serves.
func TestNativeTransport(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "log.bundle")
	os.WriteFile(bundle, []byte("# v2 git bundle\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "r.git"), 0o755)
	for url, want := range map[string]bool{
		"/srv/log.git": true, "r.git": true, "../log.git": true, "file:///srv/log.git": true,
		"git://host/log.git": true, "ssh://git@host:2222/log.git": true, "git+ssh://host/log": true, "ssh+git://host/log": true,
		"git@host:coop/log.git": true, "host:log.git": true,
		"https://host/log.git": false, "http://host/log.git": false, "ftp://host/log.git": false,
		"persistent-https://host/log": false, "ext::ssh host git-upload-pack log": false, "gcrypt::rsync://host/log": false,
		bundle: false, "log.bundle": false, "-oProxyCommand=x": false, "": false,
	} {
		if got := nativeTransport(dir, url); got != want {
			t.Errorf("nativeTransport(%q) = %v, want %v", url, got, want)
		}
	}
}
