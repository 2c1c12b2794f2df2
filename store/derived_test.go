package store

import (
	"encoding/json"
	"fmt"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/cache"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
	"git.coopcloud.tech/coop-cloud/meta/store/signing/signingtest"
)

// plainClone is what an operator gets with `git clone URL`, opened by
// meta, counting the commits its first read walks.
func plainClone(t *testing.T, url string) (*Store, *int) {
	t.Helper()
	dir := cloneByHand(t, url, "plain")
	walked := new(int)
	s, err := OpenWith(dir, OpenOptions{OnCheck: func(n int, done bool) {
		if done {
			*walked += n
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, walked
}

func heads(t *testing.T, s *Store) []*fold.Head {
	t.Helper()
	hs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func sameHeads(t *testing.T, got, want []*fold.Head) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("heads differ:\n got %s\nwant %s", g, w)
	}
}

// A plain clone of a log with a published derived state walks only the
// commits after it and reads each app unchanged since from its memo, and
// answers exactly what a clone that walked and folded everything answers.
func TestPlainCloneReadsThePublishedState(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	for i := range 20 {
		mustAppend(t, s, upgrade("a.example.com", "1.0."+string(rune('0'+i%10))))
		mustAppend(t, s, note("b.example.com"))
	}
	r, err := s.PublishDerived(ctx, alice, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.Apps != 2 || r.Branch != DerivedBranch || r.At != git(t, remote, "rev-parse", "main") {
		t.Fatalf("published %+v", r)
	}
	// After the checkpoint: one app changes, one does not.
	mustAppend(t, s, upgrade("a.example.com", "2.0.0"))
	want := heads(t, s)

	c, walked := plainClone(t, remote)
	if got := heads(t, c); !reflect.DeepEqual(len(got), 2) {
		t.Fatalf("%d heads", len(got))
	} else {
		sameHeads(t, got, want)
	}
	if *walked != 1 {
		t.Fatalf("the first read walked %d commits, want the 1 after the checkpoint", *walked)
	}
	// b's head came from the memo: its records were never read.
	if _, err := os.Stat(filepath.Join(c.MetaDir(), "cache", "coop", "prod", "b.example.com")); !os.IsNotExist(err) {
		t.Fatalf("b's records were read (%v), though its memo holds", err)
	}
	// Who signed what each head names, for --json reads: from the state
	// too, without a walk of any app's history.
	reports := func(s *Store) string {
		t.Helper()
		r, err := s.Reports(ctx, heads(t, s))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(r)
		return string(data)
	}
	if got, want := reports(c), reports(s); got != want {
		t.Fatalf("reports differ:\n got %s\nwant %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(c.MetaDir(), "cache", "coop", "prod", "b.example.com.signed")); !os.IsNotExist(err) {
		t.Fatalf("b's history was walked for its signatures (%v), though the state holds them", err)
	}
	// The next process, with the state its first read kept, still takes
	// b's memo (judged by that state now, not by meta.yaml's history).
	again, err := Open(c.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	sameHeads(t, heads(t, again), want)
	if _, err := os.Stat(filepath.Join(c.MetaDir(), "cache", "coop", "prod", "b.example.com")); !os.IsNotExist(err) {
		t.Fatalf("b's records were read by the next process (%v)", err)
	}
	// a changed since: folded from its records, the new upgrade in.
	if h, err := c.Head("a.example.com"); err != nil || h.Version != "2.0.0" {
		t.Fatalf("head of a: %v, %v", h, err)
	}

	// A second checkpoint replaces the first (no history grows on the
	// branch), and a clone made after it walks nothing.
	if _, err := s.PublishDerived(ctx, alice, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := git(t, remote, "rev-list", "--count", DerivedBranch); n != "1" {
		t.Fatalf("the derived branch has %s commits", n)
	}
	c2, walked2 := plainClone(t, remote)
	sameHeads(t, heads(t, c2), want)
	if *walked2 != 0 {
		t.Fatalf("walked %d commits at the checkpoint's own tip", *walked2)
	}
}

// pushDerived replaces the remote's derived branch with a commit made by
// the git CLI in the clone at dir from the files there, as a hostile or
// careless pusher would: signed with key when key is not "".
func pushDerived(t *testing.T, dir, key string, parent bool) {
	t.Helper()
	args := []string{"-c", "gpg.format=ssh"}
	if key != "" {
		args = append(args, "-c", "user.signingkey="+key)
	}
	git(t, dir, "add", "-A")
	commit := append(args, "commit", "-q", "-m", "derived")
	if key != "" {
		commit = append(commit, "-S")
	}
	git(t, dir, commit...)
	if !parent {
		// A parentless commit of the same tree, as meta writes them.
		tree := git(t, dir, "rev-parse", "HEAD^{tree}")
		ct := append(args, "commit-tree", tree, "-m", "derived")
		if key != "" {
			ct = append(ct, "-S")
		}
		h := git(t, dir, ct...)
		git(t, dir, "push", "-q", "-f", "origin", h+":refs/heads/"+DerivedBranch)
		return
	}
	git(t, dir, "push", "-q", "-f", "origin", "HEAD:refs/heads/"+DerivedBranch)
}

// checkoutDerived puts the remote's derived branch in a work tree of its
// own.
func checkoutDerived(t *testing.T, remote string) string {
	t.Helper()
	return cloneByHand(t, remote, "derived", "-b", DerivedBranch)
}

// cloneByHand clones url with the git CLI (and its args) into a new
// directory named name, as an operator or a hostile pusher would, and
// returns the work tree.
func cloneByHand(t *testing.T, url, name string, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	git(t, t.TempDir(), append(append([]string{"clone", "-q"}, args...), url, dir)...)
	return dir
}

// What the published state must not be believed for, each case a derived
// branch pushed by hand: the first read of a plain clone walks all of
// history instead, and answers what the records say.
func TestPublishedStateNotBelieved(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	stranger := signingtest.Keygen(t, keys, "stranger", "")

	for _, tt := range []struct {
		name string
		// signed: the log requires signatures.
		signed bool
		edit   func(t *testing.T, dir string)
		key    func() string
		parent bool
	}{
		{"a memo that lies about its head", false, lieInMemo, nil, false},
		{"a state of another history", false, func(t *testing.T, dir string) {
			editState(t, dir, func(st map[string]any) { st["checked"] = strings.Repeat("ab", 20) })
		}, nil, false},
		{"a state of other rules", false, func(t *testing.T, dir string) {
			editState(t, dir, func(st map[string]any) { st["version"] = 1 })
		}, nil, false},
		{"a state that is no JSON", false, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, derivedState), []byte("{half"), 0o644)
		}, nil, false},
		{"a commit with a parent", false, nil, nil, true},
		{"unsigned, where signatures are required", true, nil, nil, false},
		{"signed by a stranger, where signatures are required", true, nil, func() string { return stranger.Private }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			remote := bareRemote(t)
			var s *Store
			if tt.signed {
				s = signedLog(t, remote, aliceKey)
			} else {
				s = join(t, remote)
			}
			for range 5 {
				mustAppend(t, s, upgrade("a.example.com", "1.0.0"))
			}
			mustAppend(t, s, upgrade("a.example.com", "1.2.0"))
			if _, err := s.PublishDerived(ctx, alice, time.Now()); err != nil {
				t.Fatal(err)
			}
			want := heads(t, s)
			total := git(t, remote, "rev-list", "--count", "main")

			dir := checkoutDerived(t, remote)
			if tt.edit != nil {
				tt.edit(t, dir)
			} else {
				// The same content, written by someone else.
				os.WriteFile(filepath.Join(dir, "touched"), []byte("x"), 0o644)
			}
			key := ""
			if tt.key != nil {
				key = tt.key()
			}
			pushDerived(t, dir, key, tt.parent)

			c, walked := plainClone(t, remote)
			sameHeads(t, heads(t, c), want)
			if tt.name != "a memo that lies about its head" && total != strconv.Itoa(*walked) {
				t.Fatalf("walked %d commits, want all %s", *walked, total)
			}
		})
	}

	// The control: the same log, signed, with the checkpoint alice's meta
	// signed, is believed.
	remote := bareRemote(t)
	s := signedLog(t, remote, aliceKey)
	mustAppend(t, s, upgrade("a.example.com", "1.0.0"))
	if _, err := s.PublishDerived(ctx, alice, time.Now()); err != nil {
		t.Fatal(err)
	}
	c, walked := plainClone(t, remote)
	sameHeads(t, heads(t, c), heads(t, s))
	if *walked != 0 {
		t.Fatalf("a checkpoint signed by an operator was not used: walked %d", *walked)
	}
	if k := signerOf(t, c, git(t, remote, "rev-parse", DerivedBranch)); k == nil || !signing.Same(k.Pub, aliceKey.Pub) {
		t.Fatalf("the derived commit is signed by %v, want alice", k)
	}
}

func editState(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, derivedState)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]any{}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	edit(st)
	data, _ = json.Marshal(st)
	os.WriteFile(p, data, 0o644)
}

// lieInMemo changes the version in a's memo without mending its digest:
// the memo no longer adds up, and a's head is folded from its records.
func lieInMemo(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, derivedHeads, "coop", "prod", "a.example.com.head")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lied := strings.ReplaceAll(string(data), `"1.2.0"`, `"9.9.9"`)
	if lied == string(data) {
		t.Fatalf("no version to lie about in %s", data)
	}
	os.WriteFile(p, []byte(lied), 0o644)
}

// lieInSigned makes a's published signatures, unsigned in an unsigned log,
// say every event was verified, signed by signer.
func lieInSigned(t *testing.T, dir, signer string) {
	t.Helper()
	p := filepath.Join(dir, derivedSignedPath(projects.Address{Project: "coop", Env: "prod", App: "a.example.com"}))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lied := strings.ReplaceAll(string(data), `"signature":"unsigned","signed_by":""`, `"signature":"verified","signed_by":"`+signer+`"`)
	if lied == string(data) {
		t.Fatalf("no signature to lie about in %s", data)
	}
	os.WriteFile(p, []byte(lied), 0o644)
}

// `meta verify` trusts nothing derived: it checks the published state
// against history and each memo a read would take against the records, and
// says which is false and how to mend it.
func TestVerifyChecksThePublishedState(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(t *testing.T, dir string, s *Store)
		says string // "" for no finding
	}{
		{"honest", nil, ""},
		{"a memo that lies, its digest mended", func(t *testing.T, dir string, s *Store) {
			a := projects.Address{Project: "coop", Env: "prod", App: "a.example.com"}
			h, err := s.Head("a.example.com")
			if err != nil {
				t.Fatal(err)
			}
			key, err := s.memoKey(git2hash(t, s), a)
			if err != nil {
				t.Fatal(err)
			}
			lie := *h
			lie.Version = "9.9.9"
			data, err := cache.EncodeHead(key, &lie)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, derivedHeadPath(a)), data, 0o644)
		}, "the published head of coop/prod/a.example.com is not what its records fold to; `meta checkpoint` publishes a true one"},
		{"a signature that lies", func(t *testing.T, dir string, s *Store) {
			lieInSigned(t, dir, "mallory")
		}, "the published signature of event"},
		{"a state that hides a quarantined commit", func(t *testing.T, dir string, s *Store) {
			editState(t, dir, func(st map[string]any) { delete(st, "findings"); delete(st, "restored") })
		}, "the published derived state says other than history"},
		{"a state of another history", func(t *testing.T, dir string, s *Store) {
			editState(t, dir, func(st map[string]any) { st["checked"] = strings.Repeat("ab", 20) })
		}, "the published derived state is not used: derived commit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			remote := bareRemote(t)
			s := join(t, remote)
			mustAppend(t, s, upgrade("a.example.com", "1.0.0"))
			mustAppend(t, s, upgrade("a.example.com", "1.2.0"))
			// A record modified by hand: quarantined, and read as first written.
			rec := git(t, s.Root(), "ls-files", "projects/coop/prod/a.example.com")
			first := strings.Fields(rec)[0]
			os.WriteFile(filepath.Join(s.Root(), first), []byte("junk"), 0o644)
			git(t, s.Root(), "commit", "-q", "-am", "oops")
			git(t, s.Root(), "push", "-q", "origin", "main")
			if _, err := s.PublishDerived(ctx, alice, time.Now()); err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				dir := checkoutDerived(t, remote)
				tt.edit(t, dir, s)
				pushDerived(t, dir, "", false)
			}
			c, _ := plainClone(t, remote)
			v, err := c.Verify(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, f := range v.Findings {
				if strings.Contains(f.Path, DerivedBranch) {
					found = append(found, f.Problem)
				}
			}
			switch {
			case tt.says == "" && len(found) > 0:
				t.Fatalf("findings for an honest derived state: %q", found)
			case tt.says != "" && (len(found) != 1 || !strings.Contains(found[0], tt.says)):
				t.Fatalf("findings %q, want one saying %q", found, tt.says)
			}
		})
	}
}

func git2hash(t *testing.T, s *Store) gitrepo.Hash {
	t.Helper()
	return gitrepo.NewHash(git(t, s.Root(), "rev-parse", "origin/main"))
}

// One walk for many apps' signatures finds what a walk of each app's own
// paths finds: signed and unsigned commits, under signatures required and
// before, a record modified by hand.
func TestSignAllIsEachAppsWalk(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	remote := bareRemote(t)
	s := joinSigned(t, remote, aliceKey.Signer(t))
	mustAppend(t, s, deploy("a.example.com", "1.0.0")) // before alice is an operator
	changeOperators(t, s, alice, addOperator("alice", aliceAge, aliceKey))
	mustAppend(t, s, deploy("b.example.com", "1.0.0"))
	requireSignatures(t, s, aliceKey)
	for _, d := range []string{"a", "b", "c"} {
		mustAppend(t, s, upgrade(d+".example.com", "2.0.0"))
	}
	// An unsigned commit by hand: quarantined, and said so.
	byHand := note("c.example.com")
	byHand.Address = &metav1.Address{Project: "coop", Env: "prod", App: "c.example.com"}
	commitByHand(t, s, byHand)
	git(t, s.Root(), "push", "-q", "origin", "main")

	each, _ := plainClone(t, remote)
	all, _ := plainClone(t, remote)
	apps, err := all.apps(git2hash(t, all))
	if err != nil {
		t.Fatal(err)
	}
	if err := all.signAll(ctx, apps); err != nil {
		t.Fatal(err)
	}
	statuses := map[string]bool{}
	for _, a := range apps {
		want, err := each.Signatures(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := all.Signatures(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: one walk says %v, the app's own %v", a, got, want)
		}
		for _, v := range want {
			statuses[v.Signature] = true
		}
	}
	if !statuses["verified"] || !statuses["unsigned"] {
		t.Fatalf("the log should hold verified and unsigned events: %v", statuses)
	}
}

// A checkpoint derives its state without the log's lock: at a million
// events that takes seconds (15 s measured), and every write of the clone,
// a hub's group commits among them, waited for it. A write made meanwhile
// goes through at once, and the state is published at the tip it read.
func TestCheckpointDoesNotHoldUpWrites(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	before := git(t, s.Root(), "rev-parse", "HEAD")
	writer, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	writer.turns = t.TempDir()
	deriving, written := make(chan struct{}), make(chan struct{})
	s.onDerive = func() {
		close(deriving)
		select {
		case <-written:
		case <-time.After(10 * time.Second):
		}
	}
	published := make(chan error, 1)
	var report DerivedReport
	go func() {
		var err error
		report, err = s.PublishDerived(ctx, alice, time.Now())
		published <- err
	}()
	<-deriving
	appended := make(chan error, 1)
	go func() {
		out, err := writer.Append(ctx, upgrade("a.example.com", "1.1.0"), bob, time.Now(), AppendOptions{})
		if err == nil && !out.Pushed {
			err = fmt.Errorf("not pushed: %v", out.Warnings)
		}
		appended <- err
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
		close(written)
	case <-time.After(8 * time.Second):
		t.Fatal("a write waited for the checkpoint's derivation")
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if report.At != before {
		t.Errorf("published at %s, want the tip it read, %s", report.At, before)
	}
	// A plain clone reads the new event, from the published state and the
	// commit after it.
	c, _ := plainClone(t, remote)
	if h, err := c.Head("a.example.com"); err != nil || h.Version != "1.1.0" {
		t.Fatalf("a plain clone's head: %+v, %v", h, err)
	}
}
