package store

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/signing/signingtest"
)

// under `signatures: required`, a stranger with push access but no
// operator key pushes an unsigned commit C that rewrites meta.yaml (the walk
// quarantines it whole: its meta.yaml and its record are never believed),
// and then a derived state at C whose `trusted` is C's own (quarantined)
// meta.yaml. loadDerived checks only that the meta.yaml at C is the one the
// state names and judges the derived commit by that meta.yaml, which the
// stranger wrote: so the derived commit needs no signature (C's meta.yaml
// says none are required), or the stranger's own (C's meta.yaml lists the
// stranger as an operator). A plain clone must still read what the walk
// reads.
func TestDerivedQuarantinedConfigAtCheckpointIsNotBelieved(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	stranger := signingtest.Keygen(t, keys, "stranger", "")

	for _, tt := range []struct {
		name string
		// forge rewrites meta.yaml's bytes as the stranger's commit C has it.
		forge func(t *testing.T, cfg []byte) []byte
		// key signs the forged derived commit, "" for none.
		key string
	}{
		{"C's meta.yaml drops the policy, the derived commit unsigned", func(t *testing.T, cfg []byte) []byte {
			out := strings.Replace(string(cfg), "signatures: required\n", "", 1)
			if out == string(cfg) {
				t.Fatalf("no policy to drop in %s", cfg)
			}
			return []byte(out)
		}, ""},
		{"C's meta.yaml makes the stranger an operator, the derived commit signed by the stranger", func(t *testing.T, cfg []byte) []byte {
			c, err := config.Parse(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err = c.WithOperator(config.Operator{Name: "mallory", Age: "age1" + strings.Repeat("m", 58), SSH: stranger.Line})
			if err != nil {
				t.Fatal(err)
			}
			return c.Marshal()
		}, stranger.Private},
	} {
		t.Run(tt.name, func(t *testing.T) {
			remote := bareRemote(t)
			s := signedLog(t, remote, aliceKey)
			mustAppend(t, s, upgrade("a.example.com", "1.0.0"))

			// The stranger's commit C, unsigned: meta.yaml rewritten and a
			// record of their own.
			w := cloneByHand(t, remote, "stranger")
			cfgPath := filepath.Join(w, config.File)
			cfg, err := os.ReadFile(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(cfgPath, tt.forge(t, cfg), 0o644)
			ev := upgrade("a.example.com", "6.6.6")
			ev.Address.Project, ev.Address.Env = "coop", "prod"
			rp, data := recordBytes(t, ev)
			writeFile(t, w, rp, data)
			git(t, w, "add", "-A")
			git(t, w, "commit", "-q", "-m", "nothing to see")
			git(t, w, "push", "-q", "origin", "main")
			c := git(t, w, "rev-parse", "HEAD")

			// What every walk says: C is quarantined, a is still 1.0.0.
			if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
				t.Fatal(err)
			}
			want := heads(t, s)
			if len(want) != 1 || want[0].Version != "1.0.0" {
				t.Fatalf("the walking clone reads %+v", want)
			}

			// The stranger's derived state at C: C's meta.yaml trusted,
			// nothing quarantined.
			d := filepath.Join(t.TempDir(), "derived")
			git(t, t.TempDir(), "init", "-q", "-b", DerivedBranch, d)
			git(t, d, "remote", "add", "origin", remote)
			branch, _ := s.repo.Branch()
			st, _ := json.Marshal(map[string]any{"version": 4, "branch": branch, "checked": c, "trusted": git(t, w, "rev-parse", c+":"+config.File)})
			os.WriteFile(filepath.Join(d, derivedState), st, 0o644)
			pushDerived(t, d, tt.key, false)

			plain, walked := plainClone(t, remote)
			got := heads(t, plain)
			sameHeads(t, got, want)
			if *walked == 0 {
				t.Fatal("the forged derived state was taken: nothing walked")
			}
		})
	}
}

// where signatures are not required, the design comment says the
// derived state gives a pusher nothing a rewritten history would not. But
// a rewritten history cannot make an event read as signed by an operator
// without that operator's key, while a derived state's .signed file says
// so in plain JSON. `meta ls --json` of a plain clone must not say an
// event an unsigned commit wrote is "verified", signed by alice.
func TestDerivedPublishedSignaturesAreNotBelievedUnsigned(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	mustAppend(t, s, upgrade("a.example.com", "1.0.0"))
	mustAppend(t, s, upgrade("b.example.com", "1.0.0"))
	if _, err := s.PublishDerived(ctx, alice, time.Now()); err != nil {
		t.Fatal(err)
	}
	dir := checkoutDerived(t, remote)
	lieInSigned(t, dir, "Alice")
	pushDerived(t, dir, "", false)

	c, _ := plainClone(t, remote)
	reports, err := c.Reports(ctx, heads(t, c))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(reports)
	if strings.Contains(string(out), `"verified"`) || strings.Contains(string(out), `"signed_by":"Alice"`) {
		t.Fatalf("a plain clone believes an unsigned derived state that an unsigned event was signed by Alice:\n%s", out)
	}
}

// loadDerived reads integrity.json whole (and parses it) before it
// judges the derived commit's signature, and reads it with no bound on its
// size. Under `signatures: required` a stranger who may push, but whose
// derived commit no clone may believe, can still make every plain clone's
// first read (and every process that misses the cache: derivedHead loads
// the state once per process) allocate as much as they like: a blob of
// zeros compresses a thousandfold, so gigabytes cost the stranger
// megabytes. Here 128 MiB; the read must not allocate anything near it.
func TestDerivedUnsignedDerivedStateIsNotReadWhole(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	remote := bareRemote(t)
	s := signedLog(t, remote, aliceKey)
	mustAppend(t, s, upgrade("a.example.com", "1.0.0"))
	if _, err := s.PublishDerived(ctx, alice, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := heads(t, s)

	const huge = 128 << 20
	dir := checkoutDerived(t, remote)
	cmd := exec.Command("sh", "-c", "head -c "+strconv.Itoa(huge)+" /dev/zero | git hash-object -w --stdin")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	blob := strings.TrimSpace(string(out))
	git(t, dir, "update-index", "--cacheinfo", "100644,"+blob+","+derivedState)
	tree := git(t, dir, "write-tree")
	h := git(t, dir, "commit-tree", tree, "-m", "derived")
	git(t, dir, "push", "-q", "-f", "origin", h+":refs/heads/"+DerivedBranch)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, _ := plainClone(t, remote)
	sameHeads(t, heads(t, c), want)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > huge/2 {
		t.Fatalf("the first read of a plain clone allocated %d MiB for an unsigned derived commit it may not believe", n>>20)
	}
}

// a checkpoint published at a tip whose meta.yaml is quarantined
// (a change by hand that broke its schema; under signatures: required, a
// stranger's unsigned change) is one no clone uses: loadDerived wants the
// tip's meta.yaml to be the state's trusted one. PublishDerived publishes
// it all the same, and DerivedBehind then says none is published, so the
// hub (checkpoint, every poll) derives and force-pushes a new one on every
// cycle, for ever, once the log is CheckpointEvery commits long: one bad
// commit anyone may push turns the hub into a loop of full derivations
// and pushes. PublishDerived should not publish what it would not use (or
// the hub should remember what it published).
func TestDerivedCheckpointAtQuarantinedConfigIsNotPublished(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	mustAppend(t, s, upgrade("a.example.com", "1.0.0"))
	w := cloneByHand(t, remote, "byhand")
	f, err := os.OpenFile(filepath.Join(w, config.File), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("envs: [\n")
	f.Close()
	git(t, w, "commit", "-q", "-am", "oops")
	git(t, w, "push", "-q", "origin", "main")

	// Refused, saying why and what gets out of it, and nothing pushed.
	_, err = s.PublishDerived(ctx, alice, time.Now())
	if !errors.Is(err, ErrNoDerived) || !strings.Contains(err.Error(), "meta.yaml at the remote's tip is quarantined") {
		t.Fatalf("publish at a quarantined meta.yaml: %v, want ErrNoDerived", err)
	}
	if out, _ := exec.Command("git", "-C", remote, "rev-parse", "--verify", "-q", DerivedBranch).Output(); len(out) > 0 {
		t.Fatalf("a derived state was pushed: %s", out)
	}
}

// the trust rule says an operator removed cannot sign after the
// removal. loadDerived judges the derived commit by the meta.yaml in force
// at C, the commit the state holds for, not at the tip: so an operator
// removed after C can still publish a state at C, signed with their old
// key, and every plain clone believes it (here: a's only record left out,
// a has no head). The signer must still be an operator at the tip the
// clone walks the state to.
func TestDerivedRemovedOperatorCannotPublishAStateAtAnOldCommit(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	bobKey := signingtest.Keygen(t, keys, "bob", "")
	remote := bareRemote(t)
	s := signedLog(t, remote, aliceKey)
	changeOperators(t, s, alice, addOperator("bob", bobAge, bobKey))
	mustAppend(t, s, upgrade("a.example.com", "1.0.0"))
	if _, err := s.PublishDerived(ctx, alice, time.Now()); err != nil {
		t.Fatal(err) // alice's honest checkpoint at C
	}
	dir := checkoutDerived(t, remote)

	// Bob removes alice.
	b := joinSigned(t, remote, bobKey.Signer(t))
	changeOperators(t, b, &metav1.Actor{Name: "Bob"}, func(c config.Config) (config.Config, error) { return c.WithoutOperator("alice") })
	if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	want := heads(t, s)
	if len(want) != 1 {
		t.Fatalf("the walking clone reads %d heads", len(want))
	}

	// Alice, removed, republishes her state at C with a's record left out.
	rec := git(t, s.Root(), "ls-files", "projects/coop/prod/a.example.com")
	if rec == "" {
		t.Fatal("no record of a")
	}
	blob := git(t, s.Root(), "rev-parse", "HEAD:"+rec)
	editState(t, dir, func(st map[string]any) { st["excluded"] = map[string]string{rec: blob} })
	os.RemoveAll(filepath.Join(dir, derivedHeads))
	pushDerived(t, dir, aliceKey.Private, false)

	c, _ := plainClone(t, remote)
	sameHeads(t, heads(t, c), want)
}
