package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/swarm/swarmtest"
)

// rolloutStandIn is abra as the rollout needs it: `abra app upgrade
// --no-input DOMAIN VERSION` writes VERSION into the env file's TYPE=
// line; the call whose number $CTL/failat holds exits 1 and changes
// nothing. Each call's domain goes to $CTL/calls.
const rolloutStandIn = `#!/usr/bin/env bash
set -u
n=$(( $(cat "$CTL/count" 2>/dev/null || echo 0) + 1 ))
echo $n > "$CTL/count"
echo "$4" >> "$CTL/calls"
if [ -f "$CTL/failat" ] && [ "$n" = "$(cat "$CTL/failat")" ]; then echo "abra: upgrade failed" >&2; exit 1; fi
f=$(ls "$ABRA_DIR"/servers/*/"$4".env)
sed -i "s/^TYPE=\([^:]*\).*/TYPE=\1:$5/" "$f"
echo "abra: upgraded $4"
`

// The fleet is built through the store's API: `meta release`, `meta
// channel` and `meta follow` are another part of issue 16.
func rolloutFleet(t *testing.T, domains ...string) (dir string, env []string, ctl string) {
	t.Helper()
	base := t.TempDir()
	dir, ctl = filepath.Join(base, "log"), filepath.Join(base, "ctl")
	abraDir, bin := filepath.Join(base, "abra"), filepath.Join(base, "bin", "abra")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{ctl, filepath.Dir(bin), filepath.Join(abraDir, "servers", "prod")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(bin, []byte(rolloutStandIn), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, who, now, o := context.Background(), &metav1.Actor{Name: "Alice", Email: "alice@example.com"}, time.Now(), store.AppendOptions{}
	if _, err := s.AddReleases(ctx, []store.ReleaseSpec{{Recipe: "nextcloud", Version: "5.0.0+29.0.3"}, {Recipe: "nextcloud", Version: "5.1.0+29.0.4"}}, false, who, now, o); err != nil {
		t.Fatal(err)
	}
	stable := projects.ChannelRef{Recipe: "nextcloud", Channel: "stable"}
	for _, d := range domains {
		ev := &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "5.0.0+29.0.3", Recipe: "nextcloud", Address: &metav1.Address{Project: "coop", Env: "prod", App: d}}
		if _, err := s.Append(ctx, ev, who, now, o); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Follow(ctx, d, stable, "", who, now, o); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(abraDir, "servers", "prod", d+".env"), []byte("TYPE=nextcloud:5.0.0+29.0.3\nDOMAIN="+d+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Promote(ctx, store.PromoteSpec{Channel: stable, Version: "5.1.0+29.0.4"}, who, now, o); err != nil {
		t.Fatal(err)
	}
	env = []string{"META_OPERATOR=Alice <alice@example.com>", "ABRA_DIR=" + abraDir, "CTL=" + ctl, "HOME=" + base, "META_DIR=" + dir}
	// The stand-in is abra: by --abra on every call below.
	env = append(env, "ROLLOUT_ABRA="+bin)
	return dir, env, ctl
}

func runRollout(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var bin string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "ROLLOUT_ABRA="); ok {
			bin = v
		}
	}
	cmd := exec.Command("meta", append([]string{"rollout", "--abra", bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func calls(t *testing.T, ctl string) []string {
	data, err := os.ReadFile(filepath.Join(ctl, "calls"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

func TestRolloutCommand(t *testing.T) {
	apps := []string{"a.example.org", "b.example.org", "c.example.org", "d.example.org"}
	dir, env, ctl := rolloutFleet(t, apps...)

	// Usage.
	for _, args := range [][]string{{}, {"--skip", "a.example.org"}, {"--resume", "--dry-run"}, {"nextcloud"}, {"nextcloud/stable", "--wave-size", "-1"}} {
		if _, stderr, code := runRollout(t, env, args...); code != 2 {
			t.Errorf("meta rollout %v: exit %d, want 2\n%s", args, code, stderr)
		}
	}
	if _, stderr, code := runRollout(t, env, "--resume"); code != 1 || !strings.Contains(stderr, "no stopped rollout") {
		t.Fatalf("resume with nothing stopped: exit %d\n%s", code, stderr)
	}

	// The dry run: waves and commands, nothing run or written.
	tip, _ := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	out, stderr, code := runRollout(t, env, "nextcloud/stable", "--dry-run", "--wave-size", "3")
	if code != 0 || !strings.Contains(out, "dry run of the rollout of nextcloud/stable to 5.1.0+29.0.4") ||
		!strings.Contains(out, "abra app upgrade --no-input d.example.org 5.1.0+29.0.4") || !strings.Contains(out, "4 to change; 2 waves") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	if after, _ := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output(); !bytes.Equal(tip, after) || calls(t, ctl) != nil {
		t.Fatal("the dry run ran or wrote something")
	}

	// No Engine answers (this test has none): the first upgrade is left
	// pending, and the rollout stops there: exit 1, the summary as JSON on
	// stdout, progress on stderr. (TestRolloutOnARealSwarm has the Engine.)
	out, stderr, code = runRollout(t, env, "nextcloud/stable", "--json", "--wave-size", "3", "--pause", "1ms")
	if code != 1 || !strings.Contains(stderr, "meta: wave 1/2 (prod on prod): upgrading a.example.org to 5.1.0+29.0.4") ||
		!strings.Contains(stderr, "meta: error: rollout stopped at a.example.org: pending") {
		t.Fatalf("stopped rollout: exit %d\n%s", code, stderr)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	keys := func(m map[string]any) string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return strings.Join(k, ",")
	}
	if got := keys(sum); got != "apps,batch_id,channel,counts,done,dry_run,resumed,stopped,version,waves" {
		t.Fatalf("keys %s", got)
	}
	stopped := sum["stopped"].(map[string]any)
	if got := keys(stopped); got != "app,domain,reason,resume,skip" || stopped["skip"] != "meta rollout --resume --skip a.example.org" || stopped["resume"] != "meta rollout --resume" {
		t.Fatalf("stopped %v", stopped)
	}
	app := sum["apps"].([]any)[0].(map[string]any)
	if got := keys(app); got != "app,blocked,command,domain,env,from,project,reason,result,server,to,wave" || app["result"] != "stopped" {
		t.Fatalf("app %v", app)
	}
	if got := keys(sum["counts"].(map[string]any)); got != "blocked,downgraded,not_reached,planned,skipped,stopped,up_to_date,upgraded" {
		t.Fatalf("counts keys %s", got)
	}
	if c := sum["counts"].(map[string]any); c["not_reached"] != 3.0 || c["stopped"] != 1.0 {
		t.Fatalf("counts %v", c)
	}
	if got := calls(t, ctl); !slices.Equal(got, apps[:1]) {
		t.Fatalf("abra was asked %v", got)
	}
	// Still pending: a resume would not retry it, and says so.
	if _, stderr, code := runRollout(t, env, "--resume"); code != 1 || !strings.Contains(stderr, "still blocked") || !strings.Contains(stderr, "--skip a.example.org") {
		t.Fatalf("resume of a pending app: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := runRollout(t, env, "--resume", "nextcloud/testing"); code != 2 {
		t.Fatalf("resume naming another channel: exit %d\n%s", code, stderr)
	}
	// --skip goes on with b, which is left pending too: the text says how
	// to go on.
	out, stderr, code = runRollout(t, env, "--resume", "--skip", "a.example.org")
	if code != 1 || !strings.Contains(out, "rollout of nextcloud/stable to 5.1.0+29.0.4: stopped: b.example.org: pending") ||
		!strings.Contains(out, "resume: meta rollout --resume\n    or: meta rollout --resume --skip b.example.org\n") || !strings.Contains(out, "1 skipped") {
		t.Fatalf("resume --skip: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := calls(t, ctl); !slices.Equal(got, apps[:2]) {
		t.Fatalf("abra was asked %v", got)
	}
	// The batch is open, with both upgrades.
	if out, err := meta(t, dir, "batch", "show"); err != nil || !strings.Contains(out, "rollout nextcloud/stable to 5.1.0+29.0.4") || strings.Count(out, "upgrade") < 2 {
		t.Fatalf("batch show: %v\n%s", err, out)
	}
}

// swarmStandIn is abra on a real Swarm: `abra app deploy|upgrade [flags]
// DOMAIN VERSION` writes VERSION into the env file and runs `docker stack
// deploy` with $COMPOSE/DOMAIN-VERSION.yml if there is one, else
// $COMPOSE/VERSION.yml; like abra it returns once Swarm took the spec.
const swarmStandIn = `#!/usr/bin/env bash
set -eu
pos=()
for a in "$@"; do case $a in -*) ;; *) pos+=("$a") ;; esac; done
action=${pos[1]} domain=${pos[2]} version=${pos[3]}
echo "$domain" >> "$CTL/calls"
f=$(ls "$ABRA_DIR"/servers/*/"$domain".env)
sed -i "s/^TYPE=\([^:]*\).*/TYPE=\1:$version/" "$f"
stack=$(sed -n 's/^STACK_NAME=//p' "$f")
compose="$COMPOSE/$version.yml"
[ -f "$COMPOSE/$domain-$version.yml" ] && compose="$COMPOSE/$domain-$version.yml"
STACK=$stack VERSION=$version docker stack deploy --resolve-image never -c "$compose" "$stack" >/dev/null
echo "abra: $action $domain $version"
`

const swarmCompose = `version: "3.8"
services:
  app:
    image: ${IMAGE}
    environment: {RELEASE: "${VERSION}"%s}
    healthcheck: {test: ["CMD", "/app", "health"], interval: 1s, timeout: 1s, retries: 1, start_period: 1s}
    deploy:
      labels: ["coop-cloud.${STACK}.version=${VERSION}", "coop-cloud.${STACK}.recipe=nextcloud", "coop-cloud.${STACK}.chaos=false"]
      update_config: {failure_action: rollback, order: start-first, monitor: 4s}
`

// A rollout of 3 apps on the real Engine: Swarm rolls the 2nd's upgrade
// back (its new task crashes within the update monitor); the rollout
// stops there, the 3rd untouched. --skip goes on with the 3rd.
func TestRolloutOnARealSwarm(t *testing.T) {
	engine := swarmtest.Engine(t)
	image := engine.Image(t)
	base := swarmtest.StackName(t)
	apps := []string{"a.example.org", "b.example.org", "c.example.org"}
	stacks := map[string]string{}
	for i, d := range apps {
		stacks[d] = fmt.Sprintf("%s_%d", base, i+1)
	}
	t.Cleanup(func() {
		for _, s := range stacks {
			engine.Remove(t, s)
		}
	})
	work := t.TempDir()
	dir, ctl, abraDir, compose, bin := filepath.Join(work, "log"), filepath.Join(work, "ctl"), filepath.Join(work, "abra"), filepath.Join(work, "compose"), filepath.Join(work, "bin", "abra")
	for _, d := range []string{ctl, compose, filepath.Dir(bin), filepath.Join(abraDir, "servers", "swarm1")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, data string, mode os.FileMode) {
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(bin, swarmStandIn, 0o755)
	write(filepath.Join(compose, "1.0.0.yml"), fmt.Sprintf(swarmCompose, ""), 0o644)
	write(filepath.Join(compose, "1.1.0.yml"), fmt.Sprintf(swarmCompose, ""), 0o644)
	write(filepath.Join(compose, "b.example.org-1.1.0.yml"), fmt.Sprintf(swarmCompose, ", CRASH_AFTER: 2s"), 0o644)
	env := []string{"META_OPERATOR=Alice <alice@example.com>", "ABRA_DIR=" + abraDir, "CTL=" + ctl, "HOME=" + work, "META_DIR=" + dir,
		"DOCKER_HOST=" + engine.Host.DockerHost, "IMAGE=" + image, "GIT_AUTHOR_NAME=Git", "GIT_AUTHOR_EMAIL=git@example.com", "GIT_COMMITTER_NAME=Git", "GIT_COMMITTER_EMAIL=git@example.com", "COMPOSE=" + compose, "ROLLOUT_ABRA=" + bin}
	sh := func(script string) {
		t.Helper()
		c := exec.Command("sh", "-c", script)
		c.Dir, c.Env = dir, append(os.Environ(), env...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	sh(`sed -i "s/^version: 1$/version: 3/" meta.yaml && printf "servers:\n  swarm1:\n    env: prod\n    docker_host: %s\n" "$DOCKER_HOST" >> meta.yaml && git commit -qam "the servers Engines"`)
	for _, d := range apps {
		write(filepath.Join(abraDir, "servers", "swarm1", d+".env"), "TYPE=nextcloud:1.0.0\nDOMAIN="+d+"\nSTACK_NAME="+stacks[d]+"\n", 0o644)
		sh(`meta exec --abra "$ROLLOUT_ABRA" -- abra app deploy ` + d + ` 1.0.0`)
	}
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, who, o := context.Background(), &metav1.Actor{Name: "Alice", Email: "alice@example.com"}, store.AppendOptions{}
	stable := projects.ChannelRef{Recipe: "nextcloud", Channel: "stable"}
	if _, err := s.AddReleases(ctx, []store.ReleaseSpec{{Recipe: "nextcloud", Version: "1.0.0"}, {Recipe: "nextcloud", Version: "1.1.0"}}, false, who, time.Now(), o); err != nil {
		t.Fatal(err)
	}
	for _, d := range apps {
		if _, err := s.Follow(ctx, d, stable, "", who, time.Now(), o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Promote(ctx, store.PromoteSpec{Channel: stable, Version: "1.1.0"}, who, time.Now(), o); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Remove(filepath.Join(ctl, "calls"))

	out, stderr, code := runRollout(t, env, "nextcloud/stable")
	if code != 1 || !strings.Contains(out, "stopped: b.example.org: rolled back by Swarm") || !strings.Contains(out, "resume: meta rollout --resume\n    or: meta rollout --resume --skip b.example.org") {
		t.Fatalf("rollout: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := calls(t, ctl); !slices.Equal(got, apps[:2]) {
		t.Fatalf("abra was asked %v", got)
	}
	for d, want := range map[string]string{"a.example.org": `"state":"deployed","version":"1.1.0"`, "b.example.org": `"state":"rolled-back","version":"1.0.0"`, "c.example.org": `"state":"deployed","version":"1.0.0"`} {
		if out, err := meta(t, dir, "head", d, "--json"); err != nil || !strings.Contains(out, want) {
			t.Errorf("head %s: %v\n%s", d, err, out)
		}
	}
	if got := engine.Docker(t, "service", "inspect", "--format", "{{index .Spec.Labels \"coop-cloud."+stacks["c.example.org"]+".version\"}}", stacks["c.example.org"]+"_app"); strings.TrimSpace(got) != "1.0.0" {
		t.Fatalf("c's stack runs %q", got)
	}
	// Leaving b out, the rollout finishes with c.
	out, stderr, code = runRollout(t, env, "--resume", "--skip", "b.example.org")
	if code != 0 || !strings.Contains(out, ": done") || !strings.Contains(out, "2 upgraded") || !strings.Contains(out, "1 skipped") {
		t.Fatalf("resume --skip: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := calls(t, ctl); !slices.Equal(got, []string{"a.example.org", "b.example.org", "c.example.org"}) {
		t.Fatalf("abra was asked %v", got)
	}
}
