// Real remotes, made the way people make them: git daemon, git
// http-backend behind a token, sshd with a key in an agent.
package store

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/signing/signingtest"
)

// A network remote: git daemon on 127.0.0.1, started by the test.
func TestGitDaemonRemote(t *testing.T) {
	remote := bareRemote(t)
	port := freePort(t)
	daemon := exec.Command("git", "daemon", "--export-all", "--enable=receive-pack", "--reuseaddr",
		"--base-path="+filepath.Dir(remote), "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), filepath.Dir(remote))
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Process.Kill(); daemon.Wait() })
	waitForPort(t, port)
	url := fmt.Sprintf("git://127.0.0.1:%d/log.git", port)
	a := join(t, url)
	mustAppend(t, a, deploy("a.example.com", "1.0.0"))
	b := join(t, url)
	out := mustAppend(t, b, upgrade("a.example.com", "1.1.0"))
	if !out.Pushed {
		t.Fatalf("not pushed over git://: %v", out.Warnings)
	}
	a.Refresh(ctx, true)
	if h, _ := a.Head("a.example.com"); h.Version != "1.1.0" {
		t.Fatalf("a sees %+v", h)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitForPort(t testing.TB, port int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}

// An https-style remote that needs credentials: git http-backend behind an
// HTTP server on 127.0.0.1 that demands the token as a password. Without
// META_GIT_TOKEN meta cannot reach it; with it, it can.
func TestTokenForHTTPRemote(t *testing.T) {
	remote := bareRemote(t)
	git(t, remote, "config", "http.receivepack", "true")
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	const token = "s3cr3t-token"
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(remote), "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); !ok || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="meta"`)
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/log.git"
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null") // no credential helper of the machine's

	_, err = Join(ctx, filepath.Join(t.TempDir(), "clone"), JoinOptions{URL: url, InitOptions: InitOptions{Project: "coop", Env: "prod", Operator: Signature{Name: "Alice", When: time.Now()}}})
	if !errors.Is(err, ErrSync) {
		t.Fatalf("join without a token: %v", err)
	}
	t.Setenv("META_GIT_TOKEN", token)
	a := join(t, url)
	out := mustAppend(t, a, deploy("a.example.com", "1.0.0"))
	if !out.Pushed {
		t.Fatalf("not pushed over http: %v", out.Warnings)
	}
	b := join(t, url)
	if h, err := b.Head("a.example.com"); err != nil || h.Version != "1.0.0" {
		t.Fatalf("second clone over http: %+v, %v", h, err)
	}
	// The token is in no file meta or git wrote.
	for _, dir := range []string{a.Root(), b.Root()} {
		out, _ := exec.Command("grep", "-r", "-l", token, dir).CombinedOutput()
		if len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("the token leaked into %s", out)
		}
	}
}

// plantOthers leaves the operator's own work in dir in every state git
// knows (untracked, staged, a tracked file modified) and returns a check
// that all of it is still there, untouched and in the same state.
func plantOthers(t *testing.T, dir string) func() {
	t.Helper()
	files := map[string]string{"untracked.txt": "mine\n", "staged.txt": "staged\n"}
	for name, content := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	git(t, dir, "add", "staged.txt")
	cfg, _ := os.ReadFile(filepath.Join(dir, config.File))
	files[config.File] = string(cfg) + "# my note\n"
	os.WriteFile(filepath.Join(dir, config.File), []byte(files[config.File]), 0o644)
	status := git(t, dir, "status", "--porcelain")
	return func() {
		t.Helper()
		for name, content := range files {
			if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != content {
				t.Errorf("%s changed: %q", name, got)
			}
		}
		if got := git(t, dir, "status", "--porcelain"); got != status {
			t.Errorf("status changed:\n%s\nwas:\n%s", got, status)
		}
	}
}

// An ssh remote, reached the way operators reach their forge: a key held by
// ssh-agent, nothing else. sshd runs on 127.0.0.1 for the test (bash
// .ci/run installs it).
func TestSSHRemoteWithAgent(t *testing.T) {
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		t.Fatalf("%s is missing: install openssh-server (bash .ci/run does)", sshd)
	}
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host"))
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "user"))
	pub, _ := os.ReadFile(filepath.Join(dir, "user.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	port := freePort(t)
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
	t.Cleanup(func() { daemon.Process.Kill(); daemon.Wait() })
	waitForPort(t, port)

	// The agent holds the only key; ssh is told nothing else about it.
	agent := signingtest.StartAgent(t)
	agent.Add(t, signingtest.Key{Private: filepath.Join(dir, "user")})
	t.Setenv("SSH_AUTH_SOCK", agent.Sock)
	os.Remove(filepath.Join(dir, "user")) // no key file left to find: only the agent
	t.Setenv("GIT_SSH_COMMAND", "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")

	remote := bareRemote(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("ssh://%s@127.0.0.1:%d%s", me.Username, port, remote)
	a := join(t, url)
	out := mustAppend(t, a, deploy("a.example.com", "1.0.0"))
	if !out.Pushed {
		t.Fatalf("not pushed over ssh: %v\nsshd: %s", out.Warnings, daemonLog.String())
	}
	b := join(t, url)
	if h, err := b.Head("a.example.com"); err != nil || h.Version != "1.0.0" {
		t.Fatalf("second clone over ssh: %+v, %v", h, err)
	}
	// Without the agent, the same remote refuses: it really was the agent.
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := a.Append(ctx, upgrade("a.example.com", "2.0.0"), alice, time.Now(), AppendOptions{}); !errors.Is(err, ErrSync) {
		t.Fatalf("append without the agent: %v", err)
	}
}
