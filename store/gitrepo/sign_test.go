package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"git.coopcloud.tech/coop-cloud/meta/store/signing"
	"git.coopcloud.tech/coop-cloud/meta/store/signing/signingtest"
)

// signedBy says who signed commit h, by meta's own reading of it.
func signedBy(t *testing.T, r *Repo, h Hash) ssh.PublicKey {
	t.Helper()
	raw, err := r.RawCommit(h)
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
	return k
}

// Every commit a Repo with a signer writes is signed in git's format, so
// that git verify-commit accepts it: those of Commit, Build and Replay,
// a replayed commit signed anew (its old signature, over another parent,
// would not hold), whoever signed the original.
func TestSignedCommitsVerifyWithGit(t *testing.T) {
	ctx := context.Background()
	keys := t.TempDir()
	alice := signingtest.Keygen(t, keys, "alice", "")
	bob := signingtest.Keygen(t, keys, "bob", "")
	allowed := filepath.Join(keys, "allowed_signers")
	os.WriteFile(allowed, signing.AllowedSigners([]signing.Allowed{{Principal: "alice", Key: alice.Pub}, {Principal: "bob", Key: bob.Pub}}), 0o644)

	r := newRepo(t)
	base := commitFile(t, r, "unsigned.txt", "x")
	if signedBy(t, r, base) != nil {
		t.Fatal("a commit without a signer is signed")
	}
	r.SetSigner(alice.Signer(t))
	mine := commitFile(t, r, "a.txt", "a")
	r.SetSigner(bob.Signer(t))
	sig := Signature{Name: "Bob", Email: "bob@example.com", When: time.Now()}
	theirs, err := r.Build(base, []Edit{{Path: "b.txt", Data: []byte("b")}}, "theirs\n", sig)
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := r.Replay(ctx, theirs, []Hash{mine}, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetConfig(ctx, "gpg.ssh.allowedSignersFile", allowed); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		commit Hash
		by     signingtest.Key
	}{
		"Commit":          {mine, alice},
		"Build":           {theirs, bob},
		"Replay, re-sign": {replayed, bob},
	} {
		if k := signedBy(t, r, tt.commit); !signing.Same(k, tt.by.Pub) {
			t.Errorf("%s: signed by %v, want %s", name, k, tt.by.Line)
		}
		// The repository's own config names the allowed signers: git
		// needs no flag.
		git(t, r.Root(), "verify-commit", tt.commit.String())
	}
	if out := git(t, r.Root(), "log", "--format=%G? %GS", "-1", replayed.String()); out != "G bob" {
		t.Errorf("git log %%G? %%GS = %q, want \"G bob\"", out)
	}
	assertClean(t, r.Root())
}

type failingSigner struct{ signing.Signer }

func (failingSigner) Sign([]byte) ([]byte, error) { return nil, errors.New("agent gone") }

// A signature that fails writes no commit: the branch stays where it was.
func TestFailedSignatureCommitsNothing(t *testing.T) {
	ctx := context.Background()
	k := signingtest.Keygen(t, t.TempDir(), "alice", "")
	r := newRepo(t)
	base := commitFile(t, r, "a.txt", "a")
	r.SetSigner(failingSigner{k.Signer(t)})
	os.WriteFile(filepath.Join(r.Root(), "b.txt"), []byte("b"), 0o644)
	if h, err := r.Commit(base, []File{{Path: "b.txt", Data: []byte("b")}}, "b\n", Signature{Name: "A", When: time.Now()}); err == nil || !h.IsZero() {
		t.Fatalf("Commit = %s, %v; want no commit and an error", h, err)
	}
	if tip, _ := r.Head(); tip != base {
		t.Fatalf("branch moved to %s", tip)
	}
	if _, err := r.Build(base, []Edit{{Path: "c.txt", Data: []byte("c")}}, "c\n", Signature{Name: "A", When: time.Now()}); err == nil {
		t.Fatal("Build made a commit it could not sign")
	}
	if _, err := r.Replay(ctx, base, []Hash{base}, ReplayOptions{}); err != nil {
		t.Fatalf("a replay with nothing to commit signs nothing: %v", err)
	}
	if st := git(t, r.Root(), "status", "--porcelain"); !bytes.Contains([]byte(st), []byte("?? b.txt")) {
		t.Fatalf("status = %q: the index took a file no commit has", st)
	}
}
