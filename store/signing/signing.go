// Package signing is git's SSH commit signatures, as `git commit -S` with
// gpg.format=ssh makes them and `git verify-commit` checks them: an
// armored SSH SIGNATURE (namespace "git") in the commit's gpgsig header,
// over the commit object without that header. It holds the cryptography
// only; which keys a log trusts, and when, is store/integrity's.
package signing

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Namespace is the sshsig namespace git signs commits in.
const Namespace = "git"

// hash is what meta signs with: SHA-512, as ssh-keygen -Y sign does by
// default.
const hash = sshsig.HashSHA512

var (
	// ErrUnsigned: a commit carries no signature.
	ErrUnsigned = errors.New("not signed")
	// ErrBadSignature: a commit carries a signature that is malformed, in
	// another namespace or another format (a PGP one, say), or that does not
	// verify over the commit.
	ErrBadSignature = errors.New("bad signature")
)

// Signer signs a commit's payload for its gpgsig header.
type Signer interface {
	// PublicKey is the key the signatures verify with.
	PublicKey() ssh.PublicKey
	// Sign returns the armored signature of payload.
	Sign(payload []byte) ([]byte, error)
}

// NewSigner signs with an SSH signer: a key file's, or one ssh-agent holds.
func NewSigner(s ssh.Signer) Signer { return keySigner{s} }

type keySigner struct{ s ssh.Signer }

func (k keySigner) PublicKey() ssh.PublicKey { return k.s.PublicKey() }

func (k keySigner) Sign(payload []byte) ([]byte, error) {
	sig, err := sshsig.Sign(bytes.NewReader(payload), k.s, hash, Namespace)
	if err != nil {
		return nil, fmt.Errorf("sign with %s: %w", Fingerprint(k.s.PublicKey()), err)
	}
	return sshsig.Armor(sig), nil
}

// ParseKey reads a public key the way authorized_keys and meta.yaml write
// one: "ssh-ed25519 AAAA... comment" (the comment optional).
func ParseKey(s string) (ssh.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no ssh key given")
	}
	if strings.ContainsAny(s, "\n\r") {
		return nil, errors.New("an ssh key is one line")
	}
	k, _, opts, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("not an ssh public key (want \"ssh-ed25519 AAAA... comment\", as in a .pub file): %v", err)
	}
	if len(opts) > 0 || len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("an ssh public key without options, one key per line")
	}
	return k, nil
}

// Fingerprint names a key the way ssh-keygen -l does: SHA256:<base64>.
func Fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// Same says whether two keys are one key.
func Same(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}

// Split separates a raw commit object (what `git cat-file commit` prints)
// into the payload its signature is over, the object without its gpgsig
// header, and the armored signature, nil when there is none.
func Split(raw []byte) (payload, sig []byte) {
	headers, body, ok := bytes.Cut(raw, []byte("\n\n"))
	if !ok {
		headers, body = raw, nil
	}
	var out, s bytes.Buffer
	in := false
	for _, line := range bytes.SplitAfter(headers, []byte("\n")) {
		switch {
		case in && bytes.HasPrefix(line, []byte(" ")):
			s.Write(line[1:])
			continue
		case bytes.HasPrefix(line, []byte("gpgsig ")):
			in = true
			s.Write(line[len("gpgsig "):])
			continue
		}
		in = false
		out.Write(line)
	}
	if s.Len() == 0 {
		return raw, nil
	}
	if ok {
		if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		out.WriteByte('\n')
		out.Write(body)
	}
	sigBytes := s.Bytes()
	if !bytes.HasSuffix(sigBytes, []byte("\n")) {
		sigBytes = append(sigBytes, '\n')
	}
	return out.Bytes(), sigBytes
}

// Verify checks an armored signature over payload and returns the key it
// was made with. Whether that key may sign is the caller's to decide.
func Verify(payload, armored []byte) (ssh.PublicKey, error) {
	if len(armored) == 0 {
		return nil, ErrUnsigned
	}
	if !bytes.HasPrefix(bytes.TrimSpace(armored), []byte("-----BEGIN SSH SIGNATURE-----")) {
		return nil, fmt.Errorf("%w: not an SSH signature (a PGP or X.509 one?)", ErrBadSignature)
	}
	sig, err := sshsig.Unarmor(armored)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if sig.Namespace != Namespace {
		return nil, fmt.Errorf("%w: made for %q, not for git commits", ErrBadSignature, sig.Namespace)
	}
	if err := sshsig.Verify(bytes.NewReader(payload), sig, sig.PublicKey, sig.HashAlgorithm, Namespace); err != nil {
		return sig.PublicKey, fmt.Errorf("%w: by %s, does not verify over the commit: %v", ErrBadSignature, Fingerprint(sig.PublicKey), err)
	}
	return sig.PublicKey, nil
}

// Allowed is one line of an allowed-signers file: who, and their key.
type Allowed struct {
	Principal string
	Key       ssh.PublicKey
}

// AllowedSigners writes the allowed-signers file git and ssh-keygen verify
// with (gpg.ssh.allowedSignersFile, ssh-keygen -Y verify -f): one line per
// key, limited to the git namespace.
func AllowedSigners(signers []Allowed) []byte {
	var b bytes.Buffer
	for _, s := range signers {
		fmt.Fprintf(&b, "%s namespaces=\"%s\" %s", s.Principal, Namespace, ssh.MarshalAuthorizedKey(s.Key))
	}
	return b.Bytes()
}
