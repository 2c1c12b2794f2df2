package swarmtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

// SSH is the Engine reached as abra reaches a server: ssh://user@host:port,
// the remote side running `docker system dial-stdio`. It starts an sshd of
// the test's own on 127.0.0.1 whose one key may run only that command,
// with DOCKER_HOST set to the test Engine; the ssh client finds its key
// and config through an `ssh` wrapper first on $PATH (ssh reads ~/.ssh
// from the password database, not $HOME). It sets $PATH, so its test may
// not run in parallel.
func (s *Swarm) SSH(t *testing.T) swarm.Host {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		if os.Getenv(Required) == "required" {
			t.Fatalf("%s is missing: install openssh-server (bash .ci/run does)", sshd)
		}
		t.Skipf("%s is missing: install openssh-server to test ssh:// hosts", sshd)
	}
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skipf("no ssh client: %v", err)
	}
	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host"))
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "user"))
	pub, err := os.ReadFile(filepath.Join(dir, "user.pub"))
	if err != nil {
		t.Fatal(err)
	}
	// The key may only bridge to the Engine, as a server's docker CLI does.
	keys := fmt.Sprintf("command=\"DOCKER_HOST=%s exec docker system dial-stdio\",no-pty,no-port-forwarding %s", s.Host.DockerHost, pub)
	os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(keys), 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	config := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s\n"+
		"PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
		port, filepath.Join(dir, "host"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(config), 0o600)
	os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	daemon := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	var daemonLog bytes.Buffer
	daemon.Stderr = &daemonLog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
		if t.Failed() {
			t.Logf("sshd: %s", daemonLog.String())
		}
	})
	Eventually(t, 10*time.Second, func() (bool, string) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil, fmt.Sprint(err)
	})

	clientConfig := fmt.Sprintf("Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n", filepath.Join(dir, "user"))
	os.WriteFile(filepath.Join(dir, "ssh_config"), []byte(clientConfig), 0o600)
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s -F %s \"$@\"\n", sshBin, filepath.Join(dir, "ssh_config"))
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return swarm.Host{DockerHost: fmt.Sprintf("ssh://%s@127.0.0.1:%d", me.Username, port)}
}
