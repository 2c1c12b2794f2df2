package signing_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/store/signing"
	"git.coopcloud.tech/coop-cloud/meta/store/signing/signingtest"
)

// signs checks that s signs with k: a signature over a payload verifies,
// made with k.
func signs(t *testing.T, s signing.Signer, k signingtest.Key) {
	t.Helper()
	payload := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nx\n")
	sig, err := s.Sign(payload)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	got, err := signing.Verify(payload, sig)
	if err != nil || !signing.Same(got, k.Pub) || !signing.Same(s.PublicKey(), k.Pub) {
		t.Fatalf("signed by %v (%v), want %s", got, err, signing.Fingerprint(k.Pub))
	}
}

// Keys are found as git's user.signingkey names them: a private key file,
// a .pub or an encrypted key file whose key ssh-agent holds, a key::
// literal; an encrypted key without the agent says to add it there.
func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	plain := signingtest.Keygen(t, dir, "plain", "")
	held := signingtest.Keygen(t, dir, "held", "")
	locked := signingtest.Keygen(t, dir, "locked", "")
	stranger := signingtest.Keygen(t, dir, "stranger", "")
	a := signingtest.StartAgent(t)
	a.Add(t, held)
	a.Add(t, locked)
	// The agent has them now: the private file of one goes, the other's
	// gets a passphrase (as ssh-add would have asked for).
	os.Remove(held.Private)
	if out, err := exec.Command("ssh-keygen", "-q", "-p", "-P", "", "-N", "secret words", "-f", locked.Private).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -p: %v: %s", err, out)
	}
	agent, err := signing.DialAgent(a.Sock)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	keys, err := agent.Keys()
	if err != nil || len(keys) != 2 {
		t.Fatalf("agent.Keys() = %d keys, %v; want 2", len(keys), err)
	}

	for _, tt := range []struct {
		name  string
		key   string
		agent *signing.Agent
		want  signingtest.Key
	}{
		{"private file", plain.Private, nil, plain},
		{"private file, agent running", plain.Private, agent, plain},
		{".pub held by the agent", held.Private + ".pub", agent, held},
		{"encrypted file held by the agent", locked.Private, agent, locked},
		{"key:: literal", "key::" + held.Line, agent, held},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := signing.LoadKey(tt.key, tt.agent)
			if err != nil {
				t.Fatal(err)
			}
			signs(t, s, tt.want)
		})
	}

	for _, tt := range []struct {
		name  string
		key   string
		agent *signing.Agent
		is    error
		says  string
	}{
		{"encrypted, no agent", locked.Private, nil, signing.ErrEncrypted, "ssh-add " + locked.Private},
		{".pub, no agent", held.Private + ".pub", nil, signing.ErrNotInAgent, "$SSH_AUTH_SOCK is not set"},
		{"stranger's .pub", stranger.Private + ".pub", agent, signing.ErrNotInAgent, signing.Fingerprint(stranger.Pub)},
		{"missing file", dir + "/nothing", agent, os.ErrNotExist, "nothing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := signing.LoadKey(tt.key, tt.agent)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("LoadKey: %v, want %v saying %q", err, tt.is, tt.says)
			}
		})
	}
	junk := dir + "/junk"
	os.WriteFile(junk, []byte("hello\n"), 0o600)
	if _, err := signing.LoadKey(junk, agent); err == nil || !strings.Contains(err.Error(), "neither an ssh private key nor a public one") {
		t.Fatalf("LoadKey(junk): %v", err)
	}
}

// A signer whose agent died fails to sign; it never signs with anything
// else.
func TestAgentGone(t *testing.T) {
	k := signingtest.Keygen(t, t.TempDir(), "alice", "")
	a := signingtest.StartAgent(t)
	a.Add(t, k)
	agent, err := signing.DialAgent(a.Sock)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	s, err := agent.Signer(k.Pub)
	if err != nil {
		t.Fatal(err)
	}
	signs(t, s, k)
	a.Kill()
	if _, err := s.Sign([]byte("payload")); err == nil {
		t.Fatal("signed with the agent gone")
	}
	if _, err := signing.DialAgent(a.Sock); err == nil {
		t.Fatal("dialled an agent that is gone")
	}
}
