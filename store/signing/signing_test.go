package signing_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// keygen makes an ed25519 key pair with the real ssh-keygen.
func keygen(t *testing.T, dir, name string) (priv string, pub ssh.PublicKey) {
	t.Helper()
	priv = filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", priv).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	data, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if pub, err = signing.ParseKey(string(data)); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.org", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.org")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func signer(t *testing.T, priv string) signing.Signer {
	t.Helper()
	data, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return signing.NewSigner(s)
}

// A commit the git CLI signed verifies, with the key git used.
func TestVerifiesWhatGitSigns(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, t.TempDir(), "alice")
	git(t, dir, "init", "-q")
	os.WriteFile(filepath.Join(dir, "f"), []byte("x\n"), 0o644)
	git(t, dir, "add", "f")
	git(t, dir, "-c", "gpg.format=ssh", "-c", "user.signingkey="+priv, "commit", "-q", "-S", "-m", "signed\n\nwith a body")
	raw := []byte(git(t, dir, "cat-file", "commit", "HEAD") + "\n")
	payload, sig := signing.Split(raw)
	if sig == nil {
		t.Fatalf("no signature found in\n%s", raw)
	}
	key, err := signing.Verify(payload, sig)
	if err != nil {
		t.Fatal(err)
	}
	if !signing.Same(key, pub) {
		t.Fatalf("signed by %s, want %s", signing.Fingerprint(key), signing.Fingerprint(pub))
	}
	// The same commit with one byte of its message changed does not.
	if _, err := signing.Verify(bytes.Replace(payload, []byte("with a body"), []byte("with a bodY"), 1), sig); !errors.Is(err, signing.ErrBadSignature) {
		t.Fatalf("tampered payload: %v, want ErrBadSignature", err)
	}
}

// A commit meta signs verifies with git verify-commit and an
// allowed-signers file, and with ssh-keygen -Y verify.
func TestGitVerifiesWhatMetaSigns(t *testing.T) {
	dir := t.TempDir()
	keys := t.TempDir()
	priv, pub := keygen(t, keys, "alice")
	git(t, dir, "init", "-q")
	tree := git(t, dir, "write-tree")
	payload := []byte("tree " + tree + "\nauthor a <a@example.org> 1700000000 +0000\ncommitter a <a@example.org> 1700000000 +0000\n\nmeta signed\n")
	armored, err := signer(t, priv).Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	// The object as go-git encodes it: the header's lines continued by a space.
	lines := strings.Split(strings.TrimSuffix(string(armored), "\n"), "\n")
	header := "gpgsig " + strings.Join(lines, "\n ") + "\n"
	head, body, _ := strings.Cut(string(payload), "\n\n")
	obj := head + "\n" + header + "\n" + body
	p, s := signing.Split([]byte(obj))
	if string(p) != string(payload) || string(s) != string(armored) {
		t.Fatalf("Split does not give back what was signed:\n%q\n%q", p, s)
	}
	hashCmd := exec.Command("git", "hash-object", "-t", "commit", "-w", "--stdin")
	hashCmd.Dir, hashCmd.Stdin = dir, strings.NewReader(obj)
	id, err := hashCmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(keys, "allowed_signers")
	os.WriteFile(allowed, signing.AllowedSigners([]signing.Allowed{{Principal: "alice", Key: pub}}), 0o644)
	git(t, dir, "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", strings.TrimSpace(string(id)))

	sigFile := filepath.Join(keys, "sig")
	os.WriteFile(sigFile, armored, 0o644)
	v := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "alice", "-n", "git", "-s", sigFile)
	v.Stdin = bytes.NewReader(payload)
	if out, err := v.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y verify: %v: %s", err, out)
	}
}

func TestVerifyRefuses(t *testing.T) {
	keys := t.TempDir()
	priv, _ := keygen(t, keys, "alice")
	payload := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nx\n")
	good, err := signer(t, priv).Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	// Signed for another namespace by the reference tool.
	msg := filepath.Join(keys, "msg")
	os.WriteFile(msg, payload, 0o644)
	if out, err := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-f", priv, "-n", "file", msg).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v: %s", err, out)
	}
	otherNS, _ := os.ReadFile(msg + ".sig")
	for _, tc := range []struct {
		name string
		sig  []byte
		want error
	}{
		{"none", nil, signing.ErrUnsigned},
		{"pgp", []byte("-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"), signing.ErrBadSignature},
		{"garbage armor", []byte("-----BEGIN SSH SIGNATURE-----\nnot base64!\n-----END SSH SIGNATURE-----\n"), signing.ErrBadSignature},
		{"truncated", good[:len(good)/2], signing.ErrBadSignature},
		{"other namespace", otherNS, signing.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := signing.Verify(payload, tc.sig); !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSplitUnsigned(t *testing.T) {
	raw := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@b> 1 +0000\n\nmsg\n")
	p, s := signing.Split(raw)
	if s != nil || !bytes.Equal(p, raw) {
		t.Fatalf("Split(unsigned) = %q, %q", p, s)
	}
}

func TestParseKey(t *testing.T) {
	_, pub := keygen(t, t.TempDir(), "alice")
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " alice@laptop"
	if _, err := signing.ParseKey(line); err != nil {
		t.Fatalf("ParseKey(%q): %v", line, err)
	}
	for _, bad := range []string{"", "ssh-ed25519", "ssh-ed25519 AAAA!!", line + "\n" + line, `command="x" ` + line, "age1abc"} {
		if _, err := signing.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
