// Package signingtest gives tests real SSH keys and a real ssh-agent: keys
// made by ssh-keygen, held by an ssh-agent process of the test's own.
package signingtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// Key is a key pair ssh-keygen made.
type Key struct {
	// Private is the private key file; Private+".pub" the public one.
	Private string
	// Line is the public key as the .pub file has it, "ssh-ed25519 AAAA...
	// name", without its newline.
	Line string
	Pub  ssh.PublicKey
}

// Keygen makes an ed25519 key pair called name in dir with ssh-keygen,
// encrypted with passphrase when it is not empty.
func Keygen(t testing.TB, dir, name, passphrase string) Key {
	t.Helper()
	priv := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", priv).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	data, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signing.ParseKey(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return Key{Private: priv, Line: strings.TrimSpace(string(data)), Pub: pub}
}

// Signer signs with the key's private file.
func (k Key) Signer(t testing.TB) signing.Signer {
	t.Helper()
	s, err := signing.LoadKey(k.Private, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Agent is an ssh-agent process the test started.
type Agent struct {
	// Sock is its socket: what $SSH_AUTH_SOCK would name.
	Sock string
	cmd  *exec.Cmd
}

// StartAgent starts an ssh-agent of the test's own, stopped when the test
// ends.
func StartAgent(t testing.TB) *Agent {
	t.Helper()
	dir, err := os.MkdirTemp("", "agent") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &Agent{Sock: filepath.Join(dir, "sock")}
	a.cmd = exec.Command("ssh-agent", "-D", "-a", a.Sock)
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(a.Kill)
	if err := ready(a.Sock, 5*time.Second); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	return a
}

// ready waits until the socket at path accepts a connection, or wait is
// over. Its file alone is not enough: ssh-agent binds the socket (the file
// appears) before it listens, and a client in between is refused.
func ready(path string, wait time.Duration) error {
	for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not start listening in %v: %w", path, wait, err)
		}
	}
}

// Add gives the agent the key's private half (ssh-add), which the test
// may then delete.
func (a *Agent) Add(t testing.TB, k Key) {
	t.Helper()
	cmd := exec.Command("ssh-add", "-q", k.Private)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+a.Sock)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
}

// Kill stops the agent, as when it dies under a running meta.
func (a *Agent) Kill() {
	if a.cmd.ProcessState == nil {
		a.cmd.Process.Kill()
		a.cmd.Wait()
	}
}
