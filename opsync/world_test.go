package opsync

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

// The world the tests run opsync in: a real log cloned from a real bare
// remote, a real $ABRA_DIR, and a stand-in abra that changes env files
// where abra does and exits the way the test asks.

var (
	ctx   = context.Background()
	alice = &metav1.Actor{Name: "Alice", Email: "alice@example.com", Host: "laptop"}
	bob   = &metav1.Actor{Name: "Bob", Email: "bob@example.com", Host: "desk"}
)

// The servers and the app most tests use.
const (
	s1     = "s1.example.com"
	s2     = "s2.example.com"
	s3     = "s3.example.com"
	domain = "app.example.com"
	recipe = "custom-html"
)

// standInAbra behaves like abra where meta depends on it. It takes its
// orders from files in $CTL, so that its command line is the one the log
// records: exit (the code to exit with, before changing anything), signal
// (kill itself with SIGKILL), version (what deploy/upgrade/rollback write
// into TYPE=, as abra does when it resolves the latest release), chaos
// (the version --chaos writes), domain (what `new` without -D creates),
// during (a program run while abra runs, as another operator would act).
// It touches $CTL/ran whenever it runs.
const standInAbra = `#!/usr/bin/env bash
set -u
ABRA_DIR='%s'
CTL='%s'
touch "$CTL/ran"
printf '%%s\n' "$*" >> "$CTL/argv"
[ -x "$CTL/during" ] && "$CTL/during"
if [ ! -t 0 ]; then read -r answer && echo "abra read: $answer"; fi
[ -f "$CTL/signal" ] && kill -KILL $$
[ -f "$CTL/exit" ] && { echo "abra: failed" >&2; exit "$(cat "$CTL/exit")"; }
args=("$@") pos=() chaos=0 server="" dom=""
i=0
while [ $i -lt ${#args[@]} ]; do
  a=${args[$i]}
  case $a in
    -C|--chaos) chaos=1 ;;
    -s|--server) i=$((i+1)); server=${args[$i]} ;;
    -D|--domain) i=$((i+1)); dom=${args[$i]} ;;
    --server=*) server=${a#--server=} ;;
    --domain=*) dom=${a#--domain=} ;;
    --snapshot) i=$((i+1)) ;;
    -*) ;;
    *) pos+=("$a") ;;
  esac
  i=$((i+1))
done
echo "abra ${pos[*]}"
[ "${pos[0]:-}" = app ] || exit 0
envfile() { ls "$ABRA_DIR"/servers/*/"$1".env 2>/dev/null | head -1; }
case ${pos[1]:-} in
  new|n)
    [ -n "$dom" ] || dom=$(cat "$CTL/domain")
    mkdir -p "$ABRA_DIR/servers/$server"
    printf 'TYPE=%%s:4.0.0+v1.93.0\nDOMAIN=%%s\nSECRET_DB_PASSWORD_VERSION=v1\nSECRET_SMTP_PASSWORD_VERSION=v2 # length=32\n' "${pos[2]}" "$dom" > "$ABRA_DIR/servers/$server/$dom.env"
    echo "created $dom" ;;
  deploy|d|upgrade|up|rollback|rl)
    f=$(envfile "${pos[2]}")
    version=${pos[3]:-}
    [ -f "$CTL/version" ] && version=$(cat "$CTL/version")
    [ -n "$version" ] || version=$(sed -n 's/^TYPE=[^:]*:\(.*\)/\1/p' "$f")
    [ $chaos = 1 ] && version=$(cat "$CTL/chaos")
    r=$(sed -n 's/^TYPE=\([^:]*\).*/\1/p' "$f")
    sed -i "s/^TYPE=.*/TYPE=$r:$version/" "$f" ;;
  move|m|mv)
    f=$(envfile "${pos[2]}")
    mkdir -p "$ABRA_DIR/servers/${pos[3]}"
    mv "$f" "$ABRA_DIR/servers/${pos[3]}/" ;;
  remove|rm) rm "$(envfile "${pos[2]}")" ;;
esac
exit 0
`

// world is one operator's machine: their clone of the log, their abra
// directory and their abra.
type world struct {
	t       *testing.T
	remote  string
	log     *store.Store
	abraDir string
	ctl     string
	abra    string
	stdin   string

	mu       sync.Mutex
	warnings []string
	stdout   bytes.Buffer
	stderr   bytes.Buffer
}

// newWorld starts a log on a new bare remote (defaults: project coop, env
// prod), with servers: in meta.yaml as given (server: "env" or
// "project/env"), and clones it as Alice's.
func newWorld(t *testing.T, servers map[string]string) *world {
	t.Helper()
	return newWorldEnv(t, "prod", servers)
}

// newWorldEnv is newWorld with env as meta.yaml's default env ("": none,
// as `meta init --project coop` leaves it).
func newWorldEnv(t *testing.T, env string, servers map[string]string) *world {
	t.Helper()
	remote := bareRemote(t)
	admin := start(t, remote, "admin", env)
	if len(servers) > 0 {
		setServers(t, admin.Root(), servers)
	}
	admin.Close()
	return newWorldOn(t, remote)
}

// newWorldOn is Alice's machine with a clone of the log at remote.
func newWorldOn(t *testing.T, remote string) *world {
	t.Helper()
	w := &world{t: t, remote: remote, log: join(t, remote, "alice")}
	base := t.TempDir()
	w.abraDir, w.ctl = filepath.Join(base, "abra"), filepath.Join(base, "ctl")
	w.abra = filepath.Join(base, "bin", "abra")
	for _, d := range []string{filepath.Join(w.abraDir, "servers"), w.ctl, filepath.Dir(w.abra)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, w.abra, fmt.Sprintf(standInAbra, w.abraDir, w.ctl), 0o755)
	return w
}

func bareRemote(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log.git")
	git(t, filepath.Dir(dir), "init", "-q", "--bare", "-b", "main", dir)
	return dir
}

// join clones the log at remote (starting it when the remote is empty).
func join(t *testing.T, remote, name string) *store.Store {
	t.Helper()
	return start(t, remote, name, "prod")
}

// start is join, starting a log with env as its default env.
func start(t *testing.T, remote, name, env string) *store.Store {
	t.Helper()
	s, err := store.Join(ctx, filepath.Join(t.TempDir(), name), store.JoinOptions{URL: remote, InitOptions: store.InitOptions{
		Project: "coop", Env: env, Operator: store.Signature{Name: "Admin", Email: "admin@example.com", When: time.Now()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// setServers writes servers: into the meta.yaml of the clone at dir and
// shares it with plain git, as an operator editing the file would.
func setServers(t *testing.T, dir string, servers map[string]string) {
	t.Helper()
	write(t, filepath.Join(dir, config.File), withServers(t, dir, servers), 0o644)
	git(t, dir, "commit", "-qam", "map abra servers")
	git(t, dir, "push", "-q", "origin", "main")
}

// withServers is the meta.yaml of the clone at dir with servers: as given.
func withServers(t *testing.T, dir string, servers map[string]string) string {
	t.Helper()
	p := filepath.Join(dir, config.File)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	inServers := false
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(l, "servers:") {
			inServers = true
			continue
		}
		if inServers && strings.HasPrefix(l, "  ") {
			continue
		}
		inServers = false
		kept = append(kept, l)
	}
	text := strings.Join(kept, "") + "servers:\n"
	for server, to := range servers {
		text += fmt.Sprintf("  %s: %s\n", server, to)
	}
	if _, err := config.Parse([]byte(text)); err != nil {
		t.Fatal(err)
	}
	return text
}

// gitEnv is what every git the tests run sees: no machine configuration.
var gitEnv = []string{"GIT_AUTHOR_NAME=git", "GIT_AUTHOR_EMAIL=git@example.com", "GIT_COMMITTER_NAME=git", "GIT_COMMITTER_EMAIL=git@example.com", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}

// git runs the real git CLI in dir.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func write(t testing.TB, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// envFile writes the app's env file on server, as `abra app new` leaves
// it, the recipe at version.
func (w *world) envFile(server, domain, version string) string {
	p := filepath.Join(w.abraDir, "servers", server, domain+".env")
	write(w.t, p, fmt.Sprintf("TYPE=%s:%s\nDOMAIN=%s\nSECRET_DB_PASSWORD_VERSION=v1\nSECRET_SMTP_PASSWORD_VERSION=v2 # length=32\n", recipe, version, domain), 0o644)
	return p
}

// order tells the stand-in abra what to do on its next runs; "" takes
// the order back.
func (w *world) order(name, value string) {
	p := filepath.Join(w.ctl, name)
	if value == "" {
		os.Remove(p)
		return
	}
	mode := os.FileMode(0o644)
	if name == "during" {
		mode = 0o755
	}
	write(w.t, p, value, mode)
}

// ran says abra ran since the last call.
func (w *world) ran() bool {
	err := os.Remove(filepath.Join(w.ctl, "ran"))
	return err == nil
}

func (w *world) runner(opts Options) *Runner {
	r := &Runner{
		Store: w.log, Actor: alice, AbraDir: w.abraDir, Options: opts,
		Stdout: &w.stdout, Stderr: &w.stderr,
		Warn: func(format string, args ...any) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.warnings = append(w.warnings, fmt.Sprintf(format, args...))
		},
	}
	if w.stdin != "" {
		r.Stdin = strings.NewReader(w.stdin)
	}
	return r
}

// run runs `abra args...` through opsync as Alice.
func (w *world) run(opts Options, args ...string) (*Result, error) {
	w.t.Helper()
	w.mu.Lock()
	w.warnings = nil
	w.mu.Unlock()
	return w.runner(opts).Run(ctx, append([]string{w.abra}, args...))
}

// mustRun runs `abra args...` and wants abra to have exited with code and
// the recording to have worked.
func (w *world) mustRun(code int, args ...string) *Result {
	w.t.Helper()
	res, err := w.run(Options{}, args...)
	if err != nil {
		w.t.Fatalf("abra %s: %v", strings.Join(args, " "), err)
	}
	if res == nil || res.Code != code {
		w.t.Fatalf("abra %s: result %+v, want code %d", strings.Join(args, " "), res, code)
	}
	return res
}

func (w *world) warned() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.warnings...)
}

// head is the app's head in Alice's clone.
func (w *world) head(domain string) *fold.Head {
	w.t.Helper()
	h, err := w.log.Head(domain)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

// headAt is the head of the app under project/env, moved away or not.
func (w *world) headAt(project, env, domain string) *fold.Head {
	w.t.Helper()
	heads, err := w.log.List()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, h := range heads {
		if h.Project == project && h.Env == env && h.Domain == domain {
			return h
		}
	}
	var have []string
	for _, h := range heads {
		have = append(have, h.Project+"/"+h.Env+"/"+h.Domain+" "+h.State)
	}
	w.t.Fatalf("no head for %s/%s/%s; the log has %v", project, env, domain, have)
	return nil
}

// events are the events of every app in Alice's clone, newest first.
func (w *world) events() []*metav1.Event {
	w.t.Helper()
	evs, err := w.log.Log("", 0)
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}

func (w *world) tip(dir string) string { return git(w.t, dir, "rev-parse", "main") }

func where(ev *metav1.Event) string {
	a := ev.GetAddress()
	return a.GetProject() + "/" + a.GetEnv() + "/" + a.GetApp()
}
