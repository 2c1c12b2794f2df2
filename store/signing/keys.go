package signing

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Where signing keys come from: a private key file, or ssh-agent for a
// key whose private half only the agent holds (an encrypted key file, a
// hardware key), as git's user.signingkey takes them.

var (
	// ErrEncrypted: a private key file is protected by a passphrase and
	// ssh-agent does not hold its key. meta asks for no passphrase; the
	// agent is where such keys are unlocked.
	ErrEncrypted = errors.New("key file is encrypted")
	// ErrNotInAgent: ssh-agent (or no agent at all) holds no such key.
	ErrNotInAgent = errors.New("ssh-agent does not hold the key")
)

// Agent is a connection to ssh-agent. It is safe for concurrent use.
type Agent struct {
	conn   net.Conn
	client agent.ExtendedAgent
}

// DialAgent connects to the ssh-agent listening at sock, what
// $SSH_AUTH_SOCK names.
func DialAgent(sock string) (*Agent, error) {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("ssh-agent at %s: %w", sock, err)
	}
	return &Agent{conn: conn, client: agent.NewClient(conn)}, nil
}

// Close ends the connection; signers from the agent fail from then on.
func (a *Agent) Close() error { return a.conn.Close() }

// Keys are the public keys the agent holds.
func (a *Agent) Keys() ([]ssh.PublicKey, error) {
	ks, err := a.client.List()
	if err != nil {
		return nil, fmt.Errorf("ssh-agent: list keys: %w", err)
	}
	out := make([]ssh.PublicKey, 0, len(ks))
	for _, k := range ks {
		pub, err := ssh.ParsePublicKey(k.Blob)
		if err != nil {
			continue // a key type this meta cannot sign with
		}
		out = append(out, pub)
	}
	return out, nil
}

// Signer signs with the agent's key pub: ErrNotInAgent when it holds no
// such key. a may be nil, for no agent.
func (a *Agent) Signer(pub ssh.PublicKey) (Signer, error) {
	if a == nil {
		return nil, fmt.Errorf("%w %s: no ssh-agent runs ($SSH_AUTH_SOCK is not set)", ErrNotInAgent, Fingerprint(pub))
	}
	signers, err := a.client.Signers()
	if err != nil {
		return nil, fmt.Errorf("ssh-agent: list keys: %w", err)
	}
	for _, s := range signers {
		if Same(s.PublicKey(), pub) {
			return NewSigner(s), nil
		}
	}
	return nil, fmt.Errorf("%w %s (ssh-add -l lists what it holds)", ErrNotInAgent, Fingerprint(pub))
}

// LoadKey is the signer for git's way of naming a signing key
// (user.signingkey with gpg.format=ssh): the path of a private key file,
// signed with directly; the path of a public key file (.pub), or of an
// encrypted private key file, whose key the agent a holds (nil for no
// agent); or "key::" and a public key itself, which the agent holds.
func LoadKey(name string, a *Agent) (Signer, error) {
	if lit, ok := strings.CutPrefix(name, "key::"); ok {
		pub, err := ParseKey(lit)
		if err != nil {
			return nil, err
		}
		return a.Signer(pub)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if pub, err := ParseKey(string(data)); err == nil {
		s, err := a.Signer(pub)
		if err != nil {
			return nil, fmt.Errorf("%s is a public key: %w", name, err)
		}
		return s, nil
	}
	s, err := ssh.ParsePrivateKey(data)
	var encrypted *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &encrypted):
		pub := encrypted.PublicKey
		if pub == nil {
			pub = publicBeside(name)
		}
		if pub != nil {
			if s, err := a.Signer(pub); err == nil {
				return s, nil
			}
		}
		return nil, fmt.Errorf("%s: %w, and ssh-agent does not hold it: add it to the agent (ssh-add %s)", name, ErrEncrypted, name)
	case err != nil:
		return nil, fmt.Errorf("%s is neither an ssh private key nor a public one: %v", name, err)
	}
	return NewSigner(s), nil
}

// publicBeside is the key of the .pub file beside a private key file (an
// older PEM format does not carry its public key), nil for none.
func publicBeside(name string) ssh.PublicKey {
	data, err := os.ReadFile(name + ".pub")
	if err != nil {
		return nil
	}
	pub, err := ParseKey(string(data))
	if err != nil {
		return nil
	}
	return pub
}
