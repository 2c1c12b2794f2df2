package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

// newServeLog makes a log for serve tests to run a hub on.
func newServeLog(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serveProc is a meta serve running in the background.
type serveProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

// startServe starts meta serve on dir with its NATS and HTTP on free
// ports, and waits until it answers HTTP.
func startServe(t *testing.T, dir string, args ...string) *serveProc {
	t.Helper()
	httpPort := notifytest.FreePort(t)
	p := &serveProc{}
	p.cmd = exec.Command("meta", append([]string{"--dir", dir, "serve", "--nats-listen", fmt.Sprintf("127.0.0.1:%d", notifytest.FreePort(t)),
		"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort), "--poll", "100ms"}, args...)...)
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	waitPort(t, httpPort)
	return p
}

// stop sends sig and returns what serve wrote on stderr and its exit code.
func (p *serveProc) stop(t *testing.T, sig os.Signal) (string, int) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	err := p.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return p.stderr.String(), p.cmd.ProcessState.ExitCode()
}

// runServe runs meta serve on dir, expecting it to stop on its own within
// 20 seconds, and returns its stderr and exit code.
func runServe(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "meta", append([]string{"--dir", dir, "serve"}, args...)...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("meta serve %v still running after 20s: %s", args, errOut.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return errOut.String(), cmd.ProcessState.ExitCode()
}

// A second hub on the data directory of a running one is refused (exit 3)
// naming the directory and the first hub's pid; once the first is killed
// (SIGKILL: no cleanup ran), a new one starts.
func TestServeRefusesASecondHubOnItsData(t *testing.T) {
	dir := newServeLog(t)
	first := startServe(t, dir)
	errOut, code := runServe(t, dir, "--nats-listen", fmt.Sprintf("127.0.0.1:%d", notifytest.FreePort(t)), "--listen", fmt.Sprintf("127.0.0.1:%d", notifytest.FreePort(t)))
	data := filepath.Join(dir, ".git", "meta", "nats")
	if code != exitBusy || !strings.Contains(errOut, data) || !strings.Contains(errOut, fmt.Sprintf("pid %d", first.cmd.Process.Pid)) || !strings.Contains(errOut, "--data") {
		t.Fatalf("second hub: exit %d, %q; want %d naming %s, pid %d and --data", code, errOut, exitBusy, data, first.cmd.Process.Pid)
	}
	first.stop(t, syscall.SIGKILL)
	third := startServe(t, dir)
	if errOut, code := third.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("hub after a killed one: exit %d: %s", code, errOut)
	}
}

// A port taken by something else is named, with the flag that picks
// another, at once (NATS alone would wait ten seconds and not say why).
func TestServeNamesATakenPort(t *testing.T) {
	dir := newServeLog(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, tt := range []struct{ flag, other string }{{"--nats-listen", "--listen"}, {"--listen", "--nats-listen"}} {
		start := time.Now()
		errOut, code := runServe(t, dir, tt.flag, addr, tt.other, fmt.Sprintf("127.0.0.1:%d", notifytest.FreePort(t)))
		want := fmt.Sprintf("cannot listen on %s: address already in use; choose another address with %s", addr, tt.flag)
		if code != exitFailed || !strings.Contains(errOut, want) {
			t.Errorf("%s taken: exit %d, %q; want %d and %q", tt.flag, code, errOut, exitFailed, want)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s taken: said after %s", tt.flag, took)
		}
	}
}

// Stopped by SIGINT or SIGTERM, serve says in one line what it did; it
// says nothing of the kind when it could not start.
func TestServeSaysWhatItDidWhenItStops(t *testing.T) {
	dir := newServeLog(t)
	for i, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		if _, err := meta(t, dir, "append", "deploy", "a.example.com", "--version", fmt.Sprintf("1.0.%d", i)); err != nil {
			t.Fatal(err)
		}
		p := startServe(t, dir)
		time.Sleep(300 * time.Millisecond) // a first cycle publishes the event
		errOut, code := p.stop(t, sig)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		last := lines[len(lines)-1]
		if code != 0 || !regexp.MustCompile(`^meta: served [0-9.]+m?s: published 1 event$`).MatchString(last) {
			t.Fatalf("%v: exit %d, last line %q of %q", sig, code, last, errOut)
		}
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if errOut, _ := runServe(t, dir, "--listen", taken.Addr().String(), "--nats-listen", "127.0.0.1:0"); strings.Contains(errOut, "served") {
		t.Fatalf("a hub that did not start says %q", errOut)
	}
}

// Bad addresses and limits are usage errors (exit 2), said before
// anything starts, naming the flag and the value.
func TestServeRefusesBadFlags(t *testing.T) {
	dir := newServeLog(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "notaport"}, `--listen "notaport": want host:port`},
		{[]string{"--listen", ""}, `--listen "": want host:port`},
		{[]string{"--listen", "127.0.0.1:99999"}, `--listen "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`},
		{[]string{"--listen", "127.0.0.1:-1"}, `--listen "127.0.0.1:-1": port "-1" is not`},
		{[]string{"--listen", "127.0.0.1:http"}, `--listen "127.0.0.1:http": port "http" is not`},
		{[]string{"--listen", "127.0.0.1:80:80"}, `--listen "127.0.0.1:80:80": want host:port`},
		{[]string{"--nats-listen", "localhost"}, `--nats-listen "localhost": want host:port`},
		{[]string{"--nats-listen", ":65536"}, `--nats-listen ":65536": port "65536" is not`},
		{[]string{"--http-read-timeout", "0s"}, `--http-read-timeout 0s: want a duration above zero`},
		{[]string{"--http-idle-timeout", "-1s"}, `--http-idle-timeout -1s: want a duration above zero`},
		{[]string{"--http-max-conns", "0"}, `--http-max-conns 0: want at least 1`},
		{[]string{"--nats-replicas", "0"}, `--nats-replicas 0: want 1 to 5`},
		{[]string{"--nats-replicas", "6"}, `--nats-replicas 6: want 1 to 5`},
		{[]string{"--nats-replicas", "3"}, `--nats-replicas 3: the embedded NATS server is one server`},
		{[]string{"--observe-interval", "0s"}, `--observe-interval 0s: want a duration above zero`},
		{[]string{"--observe-window", "-1s"}, `--observe-window -1s: want a duration above zero`},
		{[]string{"--identity-header", "X-User", "--trusted-proxy", "10.0.0.300"}, `--trusted-proxy "10.0.0.300": want an IP address`},
		{[]string{"--trusted-proxy", "10.0.0.1"}, `--trusted-proxy: without --identity-header`},
		{[]string{"--identity-header", "X User"}, `--identity-header "X User": not a header name`},
		{[]string{"--identity-header", "Authorization"}, `--identity-header "Authorization": the API's tokens travel in it`},
	} {
		errOut, code := runServe(t, dir, tt.args...)
		if code != exitBadUse || !strings.Contains(errOut, "meta: error: "+tt.want) {
			t.Errorf("serve %q: exit %d, %q; want %d and %q", tt.args, code, errOut, exitBadUse, tt.want)
		}
	}
}

// Beyond loopback the hub serves with --insecure, open, or with a token,
// which `meta token rm` in another process revokes while it runs.
func TestServeBeyondLoopback(t *testing.T) {
	dir := newServeLog(t)
	serve := func(args ...string) (base string) {
		port := notifytest.FreePort(t)
		cmd := exec.Command("meta", append([]string{"--dir", dir, "serve", "--nats-listen", fmt.Sprintf("127.0.0.1:%d", notifytest.FreePort(t)), "--listen", fmt.Sprintf("0.0.0.0:%d", port), "--data", t.TempDir()}, args...)...)
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitPort(t, port)
		return fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	status := func(url, token string) int {
		t.Helper()
		r, _ := http.NewRequest("GET", url+"/v1/apps", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	open := serve("--insecure")
	if got := status(open, ""); got != 200 {
		t.Fatalf("--insecure, no token: %d, want 200", got)
	}
	out, err := meta(t, dir, "token", "create", "ci")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out)
	guarded := serve()
	for _, tt := range []struct {
		url, token string
		want       int
	}{{guarded, "", 401}, {guarded, "meta_wrong", 401}, {guarded, token, 200}, {open, "", 401}, {open, token, 200}} {
		if got := status(tt.url, tt.token); got != tt.want {
			t.Errorf("%s with %q: %d, want %d", tt.url, tt.token, got, tt.want)
		}
	}
	if _, err := meta(t, dir, "token", "rm", "ci"); err != nil {
		t.Fatal(err)
	}
	if got := status(guarded, token); got != 401 {
		t.Errorf("revoked while serving: %d, want 401", got)
	}
	if got := status(guarded, ""); got != 401 {
		t.Errorf("last token revoked, beyond loopback: %d, want 401 (not open again)", got)
	}
	if got := status(open, ""); got != 200 {
		t.Errorf("--insecure, last token revoked: %d, want 200", got)
	}
}

// With docker_host set for a server in meta.yaml, serve watches that
// Engine, as the operator this machine names, and says when it cannot;
// with nobody to record as it warns and serves the log all the same;
// --no-observe turns the watching off.
func TestServeObservesTheServersEngines(t *testing.T) {
	dir := newServeLog(t)
	cfg, err := os.ReadFile(filepath.Join(dir, "meta.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "nothing.sock")
	cfg = regexp.MustCompile(`(?m)^version: \d+$`).ReplaceAll(cfg, []byte("version: 3"))
	cfg = append(cfg, fmt.Sprintf("servers:\n  s1: {env: prod, docker_host: 'unix://%s'}\n", sock)...)
	if err := os.WriteFile(filepath.Join(dir, "meta.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", dir, "commit", "-qam", "s1's Engine").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	home := t.TempDir()
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want []string
		not  string
	}{
		{"as the operator", []string{"META_OPERATOR=Hub <hub@example.org>"}, nil, []string{
			"meta: serve: observing the Docker Engines of 1 server: s1 (unix://" + sock + ")",
			"meta: serve: lost the Docker Engine of server s1 at unix://" + sock + ": ",
			", recorded 0 observations of 1 Docker Engine (lost 1, back 0)",
		}, ""},
		{"nobody to record as", []string{"HOME=" + home, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "XDG_CONFIG_HOME=" + home}, nil, []string{
			"meta: warning: not observing the Docker Engines of 1 server: who are you?",
		}, "observing the Docker Engines of 1 server: s1"},
		{"--no-observe", []string{"META_OPERATOR=Hub <hub@example.org>"}, []string{"--no-observe"}, nil, "Docker Engine"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			httpPort := notifytest.FreePort(t)
			cmd := exec.Command("meta", append([]string{"--dir", dir, "serve", "--nats-listen", fmt.Sprintf("127.0.0.1:%d", notifytest.FreePort(t)),
				"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort)}, tt.args...)...)
			cmd.Env = append(os.Environ(), tt.env...)
			p := &serveProc{cmd: cmd}
			cmd.Stderr = &p.stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			waitPort(t, httpPort)
			time.Sleep(500 * time.Millisecond)
			errOut, code := p.stop(t, syscall.SIGTERM)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tt.want {
				if strings.Count(errOut, w) != 1 {
					t.Errorf("said %q; want %q once", errOut, w)
				}
			}
			if tt.not != "" && strings.Contains(errOut, tt.not) {
				t.Errorf("said %q; want nothing of %q", errOut, tt.not)
			}
		})
	}
}
