package swarmtest

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	// The port on the command line too, for SSHSessions to find it by.
	daemon := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"), "-o", fmt.Sprintf("Port=%d", port))
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

// SSHClients are the ids of this test process's ssh clients to h (the
// docker CLI's connection helper runs one per connection to the Engine);
// SSHSessions are the server's side of them, the sessions of the sshd SSH
// started for h. Both are read from /proc: a test kills or stops them to
// cut a connection, as a dropped link or a frozen server would.
func SSHClients(t testing.TB, h swarm.Host) []int {
	t.Helper()
	return children(t, os.Getpid(), "ssh", sshPort(t, h))
}

// SSHSessions: see SSHClients.
func SSHSessions(t testing.TB, h swarm.Host) []int {
	t.Helper()
	var sessions []int
	// sshd forks a monitor per connection, which forks the session.
	for _, daemon := range children(t, os.Getpid(), "sshd", "Port="+sshPort(t, h)) {
		for _, monitor := range children(t, daemon, "sshd", "") {
			sessions = append(sessions, monitor)
			sessions = append(sessions, children(t, monitor, "sshd", "")...)
		}
	}
	return sessions
}

func sshPort(t testing.TB, h swarm.Host) string {
	t.Helper()
	u, err := url.Parse(h.DockerHost)
	if err != nil || u.Scheme != "ssh" || u.Port() == "" {
		t.Fatalf("not an ssh host with a port: %q", h.DockerHost)
	}
	return u.Port()
}

// children are the processes of parent named comm (or comm-something)
// with arg among their arguments ("": any).
func children(t testing.TB, parent int, comm, arg string) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc to find processes in: %v", err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err1 := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		cmdline, err2 := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err1 != nil || err2 != nil {
			continue // gone meanwhile
		}
		// stat is "pid (comm) state ppid ...".
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		name, fields := string(stat[open+1:end]), strings.Fields(string(stat[end+1:]))
		if (name != comm && !strings.HasPrefix(name, comm+"-")) || len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		// sshd rewrites its arguments into one ("sshd: /usr/sbin/sshd -D ...").
		args := strings.FieldsFunc(string(cmdline), func(r rune) bool { return r == 0 || r == ' ' })
		if arg == "" || slices.Contains(args, arg) {
			pids = append(pids, pid)
		}
	}
	return pids
}
