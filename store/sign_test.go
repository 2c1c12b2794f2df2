package store

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
	"git.coopcloud.tech/coop-cloud/meta/store/signing/signingtest"
)

const (
	aliceAge = "age1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	bobAge   = "age1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// joinSigned joins the log at url as a clone that signs with signer.
func joinSigned(t testing.TB, url string, signer signing.Signer) *Store {
	t.Helper()
	s, err := Join(ctx, filepath.Join(t.TempDir(), "clone"), JoinOptions{URL: url, InitOptions: InitOptions{Project: "coop", Env: "prod", Operator: Signature{Name: "Alice", When: time.Now()}, Signer: signer}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// changeOperators commits change of meta.yaml's operators, as `meta
// operator` does (through envs, which only adds re-encryption).
func changeOperators(t testing.TB, s *Store, actor *metav1.Actor, change func(config.Config) (config.Config, error)) {
	t.Helper()
	if _, err := s.Write(ctx, actor, time.Now(), AppendOptions{}, func(tx *Tx) error {
		next, err := change(tx.Config())
		if err != nil {
			return err
		}
		tx.Message = "operators"
		return tx.PutConfig(next)
	}); err != nil {
		t.Fatal(err)
	}
}

func addOperator(name, age string, k signingtest.Key) func(config.Config) (config.Config, error) {
	return func(c config.Config) (config.Config, error) {
		return c.WithOperator(config.Operator{Name: name, Age: age, SSH: k.Line})
	}
}

// signerOf says which key signed commit h, nil for none.
func signerOf(t testing.TB, s *Store, h string) *signingtest.Key {
	t.Helper()
	raw, err := s.repo.RawCommit(gitrepo.NewHash(h))
	if err != nil {
		t.Fatal(err)
	}
	payload, sig := signing.Split(raw)
	if sig == nil {
		return nil
	}
	k, err := signing.Verify(payload, sig)
	if err != nil {
		t.Fatalf("commit %s: %v", h, err)
	}
	return &signingtest.Key{Pub: k}
}

// sshKeygenVerifies checks commit h's signature with ssh-keygen -Y verify,
// the reference tool, against the clone's allowed-signers file.
func sshKeygenVerifies(t testing.TB, s *Store, h, principal string) {
	t.Helper()
	raw, err := s.repo.RawCommit(gitrepo.NewHash(h))
	if err != nil {
		t.Fatal(err)
	}
	payload, sig := signing.Split(raw)
	sigFile := filepath.Join(t.TempDir(), "sig")
	os.WriteFile(sigFile, sig, 0o644)
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", s.SignersFile(), "-I", principal, "-n", "git", "-s", sigFile)
	cmd.Stdin = bytes.NewReader(payload)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y verify %s as %s: %v: %s", h, principal, err, out)
	}
}

// Every commit meta makes is signed with the clone's key, in git's own
// format: an operator change, appends, and a commit replayed on top of a
// concurrent push (signed anew). git verify-commit and git log accept
// them in a clone with no setup, through the allowed-signers file meta
// keeps, and so does ssh-keygen -Y verify. Bob's key lives only in a real
// ssh-agent.
func TestEveryCommitIsSignedAndGitVerifiesIt(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	bobKey := signingtest.Keygen(t, keys, "bob", "")
	a := signingtest.StartAgent(t)
	a.Add(t, bobKey)
	os.Remove(bobKey.Private)
	os.Remove(bobKey.Private + ".pub")
	agent, err := signing.DialAgent(a.Sock)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	bobSigner, err := agent.Signer(bobKey.Pub)
	if err != nil {
		t.Fatal(err)
	}

	remote := bareRemote(t)
	as := joinSigned(t, remote, aliceKey.Signer(t))
	changeOperators(t, as, alice, addOperator("alice", aliceAge, aliceKey))
	changeOperators(t, as, alice, addOperator("bob", bobAge, bobKey))
	since := git(t, as.Root(), "rev-parse", "HEAD~1")
	bs := joinSigned(t, remote, bobSigner)

	mustAppend(t, as, deploy("a.example.com", "1.0.0"))
	// Bob's, not pushed yet.
	if _, err := bs.Append(ctx, note("a.example.com"), bob, time.Now(), AppendOptions{Offline: true}); err != nil {
		t.Fatal(err)
	}
	mine := git(t, bs.Root(), "rev-parse", "HEAD")
	mustAppend(t, as, upgrade("a.example.com", "1.1.0")) // pushed first
	if _, err := bs.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	replayed := git(t, bs.Root(), "rev-parse", "HEAD")
	if replayed == mine {
		t.Fatal("bob's commit was not replayed on alice's")
	}

	want := map[string]string{"Alice": "alice", "Bob": "bob"}
	log := git(t, bs.Root(), "log", "--format=%H %an %G? %GS", since+"~1..HEAD")
	lines := strings.Split(log, "\n")
	if len(lines) != 5 {
		t.Fatalf("log since the first operator:\n%s", log)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 || f[2] != "G" || f[3] != want[f[1]] {
			t.Errorf("git log says %q: want a good signature (G) by %s", l, want[f[1]])
			continue
		}
		git(t, bs.Root(), "verify-commit", f[0])
		sshKeygenVerifies(t, bs, f[0], f[3])
	}
	if k := signerOf(t, bs, replayed); k == nil || !signing.Same(k.Pub, bobKey.Pub) {
		t.Errorf("the replayed commit is not bob's: %v", k)
	}
	assertClean(t, bs.Root())
}

// The allowed-signers file follows meta.yaml's operators in every clone,
// through every way meta.yaml changes there: this clone's own operator
// commands and a sync bringing another's.
func TestSignersFileFollowsOperators(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	bobKey := signingtest.Keygen(t, keys, "bob", "")
	remote := bareRemote(t)
	as := joinSigned(t, remote, aliceKey.Signer(t))
	bs := joinSigned(t, remote, bobKey.Signer(t))
	if _, err := os.Stat(bs.SignersFile()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a log without ssh keys got an allowed-signers file: %v", err)
	}
	changeOperators(t, as, alice, addOperator("alice", aliceAge, aliceKey))
	changeOperators(t, as, alice, addOperator("bob", bobAge, bobKey))
	if _, err := bs.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	wantFile := func(s *Store, names ...string) {
		t.Helper()
		var want []signing.Allowed
		for _, n := range names {
			k := map[string]signingtest.Key{"alice": aliceKey, "bob": bobKey}[n]
			want = append(want, signing.Allowed{Principal: n, Key: k.Pub})
		}
		data, err := os.ReadFile(s.SignersFile())
		if err != nil || !bytes.Equal(data, signing.AllowedSigners(want)) {
			t.Fatalf("%s holds %q (%v), want %s", s.SignersFile(), data, err, names)
		}
		if got := git(t, s.Root(), "config", "gpg.ssh.allowedSignersFile"); got != s.SignersFile() {
			t.Fatalf("gpg.ssh.allowedSignersFile = %q", got)
		}
	}
	wantFile(as, "alice", "bob")
	wantFile(bs, "alice", "bob")
	changeOperators(t, as, alice, func(c config.Config) (config.Config, error) { return c.WithoutOperator("bob") })
	wantFile(as, "alice")
	if _, err := bs.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	wantFile(bs, "alice")
	// A file someone edited is put right on the next open.
	os.WriteFile(as.SignersFile(), []byte("mallory ssh-ed25519 AAAA\n"), 0o644)
	reopened, err := Open(as.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	wantFile(reopened, "alice")
}

// A commit the git CLI signed with an operator's key, pushed to the
// remote, is one meta sees as that operator's once it fetched it.
func TestCommitSignedByGitIsSeenAsSigned(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	remote := bareRemote(t)
	as := joinSigned(t, remote, aliceKey.Signer(t))
	changeOperators(t, as, alice, addOperator("alice", aliceAge, aliceKey))
	other := filepath.Join(t.TempDir(), "other")
	git(t, filepath.Dir(other), "clone", "-q", remote, other)
	os.WriteFile(filepath.Join(other, "README.md"), []byte("# our log\n"), 0o644)
	git(t, other, "add", "README.md")
	git(t, other, "-c", "gpg.format=ssh", "-c", "user.signingkey="+aliceKey.Private, "commit", "-q", "-S", "-m", "a readme, signed by git")
	git(t, other, "push", "-q", "origin", "main")
	pushed := git(t, other, "rev-parse", "HEAD")

	if _, err := as.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if tip := git(t, as.Root(), "rev-parse", "HEAD"); tip != pushed {
		t.Fatalf("tip %s after the sync, want %s", tip, pushed)
	}
	k := signerOf(t, as, pushed)
	if k == nil {
		t.Fatal("meta sees no signature on the commit git signed")
	}
	if o, ok := as.Config().OperatorByKey(k.Pub); !ok || o.Name != "alice" {
		t.Fatalf("signed by %s: operator %v, %v; want alice", signing.Fingerprint(k.Pub), o, ok)
	}
}

// requireSignatures commits, with the git CLI signed by k, a meta.yaml
// that requires signatures, and returns the remote's tip.
func requireSignatures(t testing.TB, s *Store, k signingtest.Key) string {
	t.Helper()
	path := filepath.Join(s.Root(), config.File)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("version: 1\n"), []byte("version: 2\nsignatures: required\n"), 1)
	os.WriteFile(path, data, 0o644)
	git(t, s.Root(), "-c", "gpg.format=ssh", "-c", "user.signingkey="+k.Private, "commit", "-q", "-S", "-m", "require signatures", config.File)
	git(t, s.Root(), "push", "-q", "origin", "main")
	return git(t, s.Root(), "rev-parse", "HEAD")
}

// signedLog joins the log at remote as a clone that signs with k, makes k
// alice's operator key, and requires signatures: a log whose every commit
// from here on must be signed by an operator.
func signedLog(t testing.TB, remote string, k signingtest.Key) *Store {
	t.Helper()
	s := joinSigned(t, remote, k.Signer(t))
	changeOperators(t, s, alice, addOperator("alice", aliceAge, k))
	requireSignatures(t, s, k)
	return s
}

// Under signatures: required a write that would not be believed is
// refused before anything is committed: without a key, and with a key that
// is no operator's; a sync does not replay local commits it cannot sign.
func TestRequiredSignaturesRefuseWhatTheyWouldNotBelieve(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	stranger := signingtest.Keygen(t, keys, "stranger", "")
	remote := bareRemote(t)
	as := joinSigned(t, remote, aliceKey.Signer(t))
	changeOperators(t, as, alice, addOperator("alice", aliceAge, aliceKey))
	offlineAppend(t, as, deploy("a.example.com", "1.0.0"))
	git(t, as.Root(), "push", "-q", "origin", "main")
	requireSignatures(t, as, aliceKey)

	for _, tt := range []struct {
		name   string
		signer signing.Signer
		want   error
		says   string
	}{
		{"no key", nil, ErrNoSigner, "meta.yaml says signatures: required; nothing was written"},
		{"a stranger's key", stranger.Signer(t), ErrNotOperatorKey, signing.Fingerprint(stranger.Pub)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bs := joinSigned(t, remote, tt.signer)
			before := git(t, bs.Root(), "rev-parse", "HEAD")
			_, err := bs.Append(ctx, upgrade("a.example.com", "2.0.0"), bob, time.Now(), AppendOptions{})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("append: %v, want %v saying %q", err, tt.want, tt.says)
			}
			if _, err := bs.Repair(ctx, bob, false); !errors.Is(err, tt.want) {
				t.Fatalf("repair: %v, want %v", err, tt.want)
			}
			if after := git(t, bs.Root(), "rev-parse", "HEAD"); after != before {
				t.Fatalf("the tip moved from %s to %s", before, after)
			}
			if got := git(t, remote, "rev-parse", "main"); got != before {
				t.Fatalf("the remote moved to %s", got)
			}
			assertClean(t, bs.Root())
		})
	}

	// A clone with an unpushed commit, made while it had its key, and no
	// key now: the sync that would replay it refuses, and moves nothing.
	bobKey := signingtest.Keygen(t, keys, "bob", "")
	changeOperators(t, as, alice, addOperator("bob", bobAge, bobKey))
	bs := joinSigned(t, remote, bobKey.Signer(t))
	offlineAppend(t, bs, note("a.example.com"))
	mustAppend(t, as, upgrade("a.example.com", "1.1.0"))
	bs.SetSigner(nil)
	before := git(t, bs.Root(), "rev-parse", "HEAD")
	if _, err := bs.Sync(ctx, SyncOptions{}); !errors.Is(err, ErrNoSigner) {
		t.Fatalf("sync without a key: %v, want ErrNoSigner", err)
	}
	if after := git(t, bs.Root(), "rev-parse", "HEAD"); after != before {
		t.Fatalf("the tip moved from %s to %s", before, after)
	}
	// With its key the same sync replays and signs.
	bs.SetSigner(bobKey.Signer(t))
	if _, err := bs.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if k := signerOf(t, bs, git(t, bs.Root(), "rev-parse", "HEAD")); k == nil || !signing.Same(k.Pub, bobKey.Pub) {
		t.Fatalf("the replayed commit is signed by %v", k)
	}
}

// killing wraps a signer whose ssh-agent is killed once it signed n
// times: the agent dies in the middle of a write.
type killing struct {
	signing.Signer
	agent *signingtest.Agent
	n     int32
	count atomic.Int32
}

func (k *killing) Sign(payload []byte) ([]byte, error) {
	if k.count.Add(1) > k.n {
		k.agent.Kill()
	}
	return k.Signer.Sign(payload)
}

// An ssh-agent that dies in the middle of a write fails it cleanly: the
// commits made before are taken back, the work tree is as it was, nothing
// reaches the remote, and the next write with a live agent works.
func TestAgentKilledMidWriteWritesNothing(t *testing.T) {
	keys := t.TempDir()
	aliceKey := signingtest.Keygen(t, keys, "alice", "")
	a := signingtest.StartAgent(t)
	a.Add(t, aliceKey)
	agent, err := signing.DialAgent(a.Sock)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	viaAgent, err := agent.Signer(aliceKey.Pub)
	if err != nil {
		t.Fatal(err)
	}
	remote := bareRemote(t)
	s := joinSigned(t, remote, nil)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	before := git(t, s.Root(), "rev-parse", "HEAD")

	s.SetSigner(&killing{Signer: viaAgent, agent: a, n: 1})
	err = writeTwo(s)
	if !errors.Is(err, gitrepo.ErrSign) || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("write with the agent killed after one commit: %v", err)
	}
	if after := git(t, s.Root(), "rev-parse", "HEAD"); after != before {
		t.Fatalf("the tip moved from %s to %s", before, after)
	}
	if got := git(t, remote, "rev-parse", "main"); got != before {
		t.Fatalf("the remote moved to %s", got)
	}
	assertClean(t, s.Root())
	if h, err := s.Head("a.example.com"); err != nil || h.Version != "1.0.0" || h.Events != 1 {
		t.Fatalf("head after the failed write: %+v, %v", h, err)
	}

	b := signingtest.StartAgent(t)
	b.Add(t, aliceKey)
	again, err := signing.DialAgent(b.Sock)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	live, err := again.Signer(aliceKey.Pub)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSigner(live)
	out := mustAppend(t, s, upgrade("a.example.com", "1.1.0"))
	if k := signerOf(t, s, out.Commit); k == nil || !signing.Same(k.Pub, aliceKey.Pub) {
		t.Fatalf("the write after is signed by %v", k)
	}
}
