// Tests on a real Docker Engine in Swarm mode ($META_TEST_DOCKER_HOST,
// see swarmtest). With -capture they also write what the Engine answered
// at each scenario's telling moment into testdata/engine, the fixtures
// the unit tests of look_test.go read.
package swarm_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
	"git.coopcloud.tech/coop-cloud/meta/swarm/swarmtest"
)

var captureFlag = flag.Bool("capture", false, "write the real Engine's answers into testdata/engine/*.json")

// capture writes the Engine's answer about stack as testdata/engine/name.json,
// with the stack's name replaced by swarmtest.CapturedStack
// (swarmtest.Captured reads it back).
func capture(t *testing.T, sw *swarmtest.Swarm, stack, name string) {
	t.Helper()
	if !*captureFlag {
		return
	}
	data, err := json.MarshalIndent(sw.Capture(t, stack), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.ReplaceAll(string(data), stack, swarmtest.CapturedStack))
	if err := os.WriteFile(filepath.Join("testdata", "engine", name+".json"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// captureOnce captures the first look Follow reports in the given state.
func captureOnce(t *testing.T, sw *swarmtest.Swarm, stack, state string) func(*swarm.Stack) {
	var once sync.Once
	return func(st *swarm.Stack) {
		if app := st.App(); app != nil && app.UpdateState == state {
			once.Do(func() { capture(t, sw, stack, state) })
		}
	}
}

func follow(t *testing.T, e swarm.Engine, stack, want string, progress func(*swarm.Stack)) (*swarm.Stack, swarm.Verdict, time.Duration) {
	t.Helper()
	start := time.Now()
	var logged func(*swarm.Stack) = func(st *swarm.Stack) {
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), st.Summary())
		if progress != nil {
			progress(st)
		}
	}
	st, v, err := swarm.Follow(context.Background(), e, stack, want, 2*time.Minute, logged)
	if err != nil {
		t.Fatalf("follow %s to %s: %v", stack, want, err)
	}
	t.Logf("%6.1fs settled: %s: %s", time.Since(start).Seconds(), v.Outcome, v.Detail)
	return st, v, time.Since(start)
}

func labelsOf(t *testing.T, st *swarm.Stack) string {
	t.Helper()
	app := st.App()
	if app == nil {
		t.Fatalf("stack %s has no app service: %s", st.Name, st.Summary())
	}
	return swarm.RunningVersion(app.Labels, st.Name)
}

// A first deploy starts no Swarm update: it settles when every task runs.
// An upgrade that replaces the tasks settles when Swarm completes it.
func TestEngineHealthyDeployAndUpgrade(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	app := swarmtest.App{Version: "1.0.0+a", Others: []string{"db"}, Healthcheck: true,
		UpdateConfig: "order: start-first\nmonitor: 2s"}
	sw.Deploy(t, stack, app.Compose(stack, image))
	st, v, _ := follow(t, e, stack, "1.0.0+a", nil)
	if v.Outcome != metav1.Outcome_OUTCOME_SUCCEEDED {
		t.Fatalf("first deploy: %v %s", v.Outcome, v.Detail)
	}
	capture(t, sw, stack, "first_deploy")
	app0 := st.App()
	if app0.UpdateState != "" || app0.Running != 1 || app0.Desired != 1 || len(st.Services) != 2 {
		t.Fatalf("first deploy: %+v", st)
	}
	o := st.Observation("exec")
	if o.GetVersion() != "1.0.0+a" || o.GetRecipe() != "swarmtest" || len(o.GetServices()) != 2 || o.GetServices()[1].GetName() != stack+"_db" || o.GetMissing() {
		t.Fatalf("observation: %v", o)
	}

	app.Version, app.Env = "1.1.0+a", map[string]string{"RELEASE": "1.1.0"}
	sw.Deploy(t, stack, app.Compose(stack, image))
	st, v, took := follow(t, e, stack, "1.1.0+a", captureOnce(t, sw, stack, swarm.StateUpdating))
	if v.Outcome != metav1.Outcome_OUTCOME_SUCCEEDED || st.App().UpdateState != swarm.StateCompleted {
		t.Fatalf("upgrade: %v %s; %s", v.Outcome, v.Detail, st.Summary())
	}
	capture(t, sw, stack, "completed")
	if o := st.Observation("exec"); o.GetPreviousVersion() != "1.0.0+a" || o.GetUpdateState() != "completed" {
		t.Fatalf("observation after the upgrade: %v", o)
	}
	t.Logf("upgrade settled in %s", took)
}

// The failure that started meta: under start-first the old task keeps
// serving, the new one crashes within the update monitor, and Swarm rolls
// the service back. The labels are back at the old version, and
// PreviousSpec is gone.
func TestEngineRollback(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	app := swarmtest.App{Version: "1.0.0+a", Replicas: 2, Healthcheck: true,
		UpdateConfig: "failure_action: rollback\norder: start-first\nmonitor: 5s"}
	sw.Deploy(t, stack, app.Compose(stack, image))
	follow(t, e, stack, "1.0.0+a", nil)

	app.Version, app.Env = "2.0.0+b", map[string]string{"CRASH_AFTER": "2s"}
	sw.Deploy(t, stack, app.Compose(stack, image))
	st, v, took := follow(t, e, stack, "2.0.0+b", captureOnce(t, sw, stack, swarm.StateRollbackStarted))
	if v.Outcome != metav1.Outcome_OUTCOME_ROLLED_BACK {
		t.Fatalf("crashing upgrade: %v %s; %s", v.Outcome, v.Detail, st.Summary())
	}
	capture(t, sw, stack, "rollback_completed")
	if got := labelsOf(t, st); got != "1.0.0+a" {
		t.Fatalf("labels after the rollback say %s", got)
	}
	if st.App().PreviousLabels != nil {
		t.Fatalf("PreviousSpec after rollback_completed: %v", st.App().PreviousLabels)
	}
	if !strings.Contains(v.Detail, "1.0.0+a runs") {
		t.Fatalf("detail: %s", v.Detail)
	}
	t.Logf("deploy to rollback_completed in %s", took)
}

// failure_action: pause leaves the new spec in place and the update paused.
func TestEnginePaused(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	app := swarmtest.App{Version: "1.0.0+a", Healthcheck: true,
		UpdateConfig: "failure_action: pause\norder: start-first\nmonitor: 5s"}
	sw.Deploy(t, stack, app.Compose(stack, image))
	follow(t, e, stack, "1.0.0+a", nil)

	app.Version, app.Env = "2.0.0+b", map[string]string{"CRASH_AFTER": "2s"}
	sw.Deploy(t, stack, app.Compose(stack, image))
	st, v, took := follow(t, e, stack, "2.0.0+b", nil)
	if v.Outcome != metav1.Outcome_OUTCOME_PAUSED || st.App().UpdateState != swarm.StatePaused {
		t.Fatalf("crashing upgrade under pause: %v %s; %s", v.Outcome, v.Detail, st.Summary())
	}
	capture(t, sw, stack, "paused")
	if got := labelsOf(t, st); got != "2.0.0+b" || st.App().PreviousLabels == nil {
		t.Fatalf("paused: labels %s, previous %v", got, st.App().PreviousLabels)
	}
	t.Logf("deploy to paused in %s", took)
}

// A hand-made `docker service update --label-add` of the version label
// starts no update and leaves no UpdateStatus, even after a rollback.
func TestEngineLabelOnlyUpdate(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	app := swarmtest.App{Version: "1.0.0+a"}
	sw.Deploy(t, stack, app.Compose(stack, image))
	follow(t, e, stack, "1.0.0+a", nil)
	app.Env = map[string]string{"RELEASE": "2"}
	sw.Deploy(t, stack, app.Compose(stack, image))
	if st, _, _ := follow(t, e, stack, "1.0.0+a", nil); st.App().UpdateState != swarm.StateCompleted {
		t.Fatalf("env change: %s", st.Summary())
	}

	sw.LabelAdd(t, swarm.ServiceName(stack), "coop-cloud."+stack+".version", "9.9.9+z")
	st, err := e.Look(context.Background(), stack)
	if err != nil {
		t.Fatal(err)
	}
	a := st.App()
	if a.UpdateState != "" || a.UpdateStale || labelsOf(t, st) != "9.9.9+z" {
		t.Fatalf("after --label-add: state %q stale %v labels %s", a.UpdateState, a.UpdateStale, labelsOf(t, st))
	}
	if _, ok := st.Settled("9.9.9+z", time.Hour); ok {
		t.Fatal("settled within the grace of the spec change")
	}
	st, v, _ := follow(t, e, stack, "9.9.9+z", nil)
	if v.Outcome != metav1.Outcome_OUTCOME_SUCCEEDED {
		t.Fatalf("label-only: %v %s", v.Outcome, v.Detail)
	}
	capture(t, sw, stack, "label_only")
}

// Scaled to 0: nothing runs, nothing is wanted.
func TestEngineScaleToZero(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0+a"}.Compose(stack, image))
	follow(t, e, stack, "1.0.0+a", nil)
	sw.Scale(t, swarm.ServiceName(stack), 0)
	var st *swarm.Stack
	swarmtest.Eventually(t, time.Minute, func() (bool, string) {
		var err error
		if st, err = e.Look(context.Background(), stack); err != nil {
			t.Fatal(err)
		}
		a := st.App()
		return a.Running == 0 && a.Desired == 0, st.Summary()
	})
	capture(t, sw, stack, "scaled_to_zero")
	if o := st.Observation("serve"); o.GetServices()[0].GetDesired() != 0 || o.GetServices()[0].GetRunning() != 0 {
		t.Fatalf("observation: %v", o)
	}
}

// A task that crash-loops after its deploy settled: fewer running than
// desired, and the last task error says why; restarted, it runs again
// with that error still said.
func TestEngineCrashLoop(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0+a", Env: map[string]string{"CRASH_AFTER": "8s"}}.Compose(stack, image))
	follow(t, e, stack, "1.0.0+a", nil)
	var st *swarm.Stack
	swarmtest.Eventually(t, time.Minute, func() (bool, string) {
		var err error
		if st, err = e.Look(context.Background(), stack); err != nil {
			t.Fatal(err)
		}
		a := st.App()
		return a.Running < a.Desired && a.LastError != "", st.Summary()
	})
	capture(t, sw, stack, "crash_loop")
	a := st.App()
	if a.LastError != "task: non-zero exit (1)" || a.LastErrorAt.IsZero() {
		t.Fatalf("last error %q at %s", a.LastError, a.LastErrorAt)
	}
	if _, ok := st.Settled("1.0.0+a", 0); ok && a.Running < a.Desired {
		t.Fatal("a crash-looping first deploy settled")
	}
	if o := st.Observation("serve"); o.GetServices()[0].GetLastError() != a.LastError {
		t.Fatalf("observation: %v", o)
	}
	// Swarm restarts it: up again for a while, the last error still said.
	swarmtest.Eventually(t, time.Minute, func() (bool, string) {
		var err error
		if st, err = e.Look(context.Background(), stack); err != nil {
			t.Fatal(err)
		}
		a := st.App()
		return a.Running == a.Desired && a.LastError != "", st.Summary()
	})
	capture(t, sw, stack, "crash_loop_up")
	if a := st.App(); a.LastErrorAt.After(a.RunningSince) {
		t.Fatalf("up since %s, failed at %s", a.RunningSince, a.LastErrorAt)
	}
}

// A removed stack is missing, and its observation says so.
func TestEngineRemovedStack(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0+a"}.Compose(stack, image))
	if st, err := e.Look(context.Background(), stack); err != nil || st.Missing() {
		t.Fatalf("deployed stack: %v, %v", st, err)
	}
	sw.Remove(t, stack)
	st, err := e.Look(context.Background(), stack)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Missing() || st.App() != nil {
		t.Fatalf("removed stack: %s", st.Summary())
	}
	capture(t, sw, stack, "removed")
	o := st.Observation("serve")
	if !o.GetMissing() || len(o.GetServices()) != 0 || o.GetService() != swarm.ServiceName(stack) {
		t.Fatalf("observation: %v", o)
	}
	if _, ok := st.Settled("1.0.0+a", 0); ok {
		t.Fatal("a missing stack settled")
	}
	stacks, err := e.Stacks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stacks[stack]; ok {
		t.Fatal("Stacks lists the removed stack")
	}
}

// Under --chaos the version a deploy puts in is the chaos version.
func TestEngineChaos(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0+a", Chaos: true, ChaosVersion: "eb96de94+U"}.Compose(stack, image))
	st, v, _ := follow(t, e, stack, "eb96de94+U", nil)
	if v.Outcome != metav1.Outcome_OUTCOME_SUCCEEDED {
		t.Fatalf("chaos deploy: %v %s", v.Outcome, v.Detail)
	}
	capture(t, sw, stack, "chaos")
	if _, ok := st.Settled("1.0.0+a", 0); ok {
		t.Fatal("a chaos deploy settled as its version label")
	}
	if o := st.Observation("exec"); !o.GetChaos() || o.GetChaosVersion() != "eb96de94+U" || o.GetVersion() != "1.0.0+a" {
		t.Fatalf("observation: %v", o)
	}
	stacks, err := e.Stacks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := stacks[stack]; got == nil || got.App() == nil || got.App().Running != 1 {
		t.Fatalf("Stacks: %v", got)
	}
}

// Follow gives up at its timeout with the last look.
func TestFollowTimesOut(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0+a"}.Compose(stack, image))
	start := time.Now()
	looks := 0
	st, _, err := swarm.Follow(context.Background(), e, stack, "2.0.0+never", 3*time.Second, func(*swarm.Stack) { looks++ })
	took := time.Since(start)
	if !errors.Is(err, swarm.ErrNotSettled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrNotSettled and DeadlineExceeded", err)
	}
	if st == nil || st.Missing() || looks == 0 {
		t.Fatalf("last look %v after %d progress calls", st, looks)
	}
	if took < 3*time.Second || took > 6*time.Second {
		t.Fatalf("gave up after %s, timeout 3s", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := swarm.Follow(ctx, e, stack, "2.0.0+never", time.Minute, nil); !errors.Is(err, swarm.ErrNotSettled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

// The event stream names the stack a `docker service update` changed.
func TestChangesNameTheStack(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, stack, image := sw.Dial(t), swarmtest.StackName(t), sw.Image(t)
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0+a"}.Compose(stack, image))
	ctx, cancel := context.WithCancel(context.Background())
	names, errc := e.Changes(ctx)
	time.Sleep(200 * time.Millisecond) // the stream is open before the change
	start := time.Now()
	sw.LabelAdd(t, swarm.ServiceName(stack), "coop-cloud."+stack+".version", "1.0.1+a")
	deadline := time.After(15 * time.Second)
	for got := false; !got; {
		select {
		case n := <-names:
			got = n == stack
		case err := <-errc:
			t.Fatalf("stream ended: %v", err)
		case <-deadline:
			t.Fatal("no change named the stack within 15s")
		}
	}
	t.Logf("the stream named the stack %s after the update began", time.Since(start))
	cancel()
	for range names {
	}
	if err := <-errc; err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

// An ssh:// host, as abra reaches servers: the docker CLI's connection
// helper runs `ssh ... docker system dial-stdio`.
func TestEngineOverSSH(t *testing.T) {
	sw := swarmtest.Engine(t)
	stack, image := swarmtest.StackName(t), sw.Image(t)
	h := sw.SSH(t)
	e, err := swarm.Dial(context.Background(), h)
	if err != nil {
		t.Fatalf("dial %s: %v", h.DockerHost, err)
	}
	defer e.Close()
	if e.Host() != h.DockerHost {
		t.Fatalf("Host() = %s", e.Host())
	}
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0+a"}.Compose(stack, image))
	_, v, _ := follow(t, e, stack, "1.0.0+a", nil)
	if v.Outcome != metav1.Outcome_OUTCOME_SUCCEEDED {
		t.Fatalf("over ssh: %v %s", v.Outcome, v.Detail)
	}
	// A key the server does not know: unreachable, naming the host.
	u, err := url.Parse(h.DockerHost)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("nobody-here")
	wrong := swarm.Host{DockerHost: u.String()}
	start := time.Now()
	if _, err := swarm.Dial(context.Background(), wrong); !errors.Is(err, swarm.ErrUnreachable) || !strings.Contains(err.Error(), wrong.DockerHost) {
		t.Fatalf("dial %s: err = %v, want ErrUnreachable", wrong.DockerHost, err)
	}
	t.Logf("a refused ssh login failed in %s", time.Since(start))
}

// The event stream over ssh://, as the hub follows a server abra
// reaches: a hand-made label change names the stack, and a connection
// that dies (an end of it killed; or the server's end stopped: a link
// gone silent, which a ping over a new connection does not notice) is an
// error wrapping ErrUnreachable within 30 s.
func TestChangesOverSSH(t *testing.T) {
	sw := swarmtest.Engine(t)
	stack, image := swarmtest.StackName(t), sw.Image(t)
	h := sw.SSH(t)
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0+a"}.Compose(stack, image))
	for _, tt := range []struct {
		name   string
		procs  func(testing.TB, swarm.Host) []int
		signal syscall.Signal
		within time.Duration
	}{
		{"the ssh client killed", swarmtest.SSHClients, syscall.SIGKILL, 5 * time.Second},
		{"the server's sshd session killed", swarmtest.SSHSessions, syscall.SIGKILL, 5 * time.Second},
		// The link gone silent: only the ssh client's keepalive notices.
		{"the server's sshd session stopped", swarmtest.SSHSessions, syscall.SIGSTOP, 31 * time.Second}, // 30 s, and a second of slack
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := swarm.Dial(context.Background(), h)
			if err != nil {
				t.Fatalf("dial %s: %v", h.DockerHost, err)
			}
			defer e.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			names, errc := e.Changes(ctx)
			time.Sleep(500 * time.Millisecond) // the stream is open before the change
			start := time.Now()
			sw.LabelAdd(t, swarm.ServiceName(stack), "coop-cloud."+stack+".version", "1.0.1+"+strings.Fields(tt.name)[1])
			deadline := time.After(15 * time.Second)
			for got := false; !got; {
				select {
				case n := <-names:
					got = n == stack
				case err := <-errc:
					t.Fatalf("stream ended: %v", err)
				case <-deadline:
					t.Fatal("no change named the stack within 15s")
				}
			}
			t.Logf("over ssh the stream named the stack %s after the update began", time.Since(start))

			pids := tt.procs(t, h)
			if len(pids) == 0 {
				t.Fatal("no ssh process of the Engine's connection")
			}
			start = time.Now()
			for _, pid := range pids {
				if err := syscall.Kill(pid, tt.signal); err != nil {
					t.Fatalf("%s ssh client %d: %v", tt.signal, pid, err)
				}
				defer syscall.Kill(pid, syscall.SIGCONT)
			}
			for {
				select {
				case <-names:
					continue
				case err := <-errc:
					took := time.Since(start)
					if !errors.Is(err, swarm.ErrUnreachable) || !strings.Contains(err.Error(), h.DockerHost) {
						t.Fatalf("after %s: err = %v, want ErrUnreachable naming %s", took, err, h.DockerHost)
					}
					t.Logf("%s (%d of them): %v after %s", tt.name, len(pids), err, took)
					if took > tt.within {
						t.Errorf("the loss was said after %s, want within %s", took, tt.within)
					}
				case <-time.After(tt.within + 30*time.Second):
					t.Fatalf("no error %s after %s", tt.within+30*time.Second, tt.name)
				}
				break
			}
		})
	}
}

// A first deploy starts no Swarm update, so no monitor of Swarm's judges
// it: one that crash-loops must never be taken for a success however a
// look lands, and is not settled at the timeout (meta exec then records it
// pending); a healthy one is, once its task has run for the monitor.
func TestFollowAFirstDeploy(t *testing.T) {
	t.Parallel()
	sw := swarmtest.Engine(t)
	e, image := sw.Dial(t), sw.Image(t)
	crashing, healthy := swarmtest.StackName(t)+"c", swarmtest.StackName(t)+"h"
	sw.Deploy(t, crashing, swarmtest.App{Version: "1.0.0+a", Env: map[string]string{"CRASH_AFTER": "4s"}, UpdateConfig: "monitor: 4s"}.Compose(crashing, image))
	sw.Deploy(t, healthy, swarmtest.App{Version: "1.0.0+a", UpdateConfig: "monitor: 2s"}.Compose(healthy, image))
	_, v, err := swarm.Follow(context.Background(), e, crashing, "1.0.0+a", 25*time.Second, nil)
	if !errors.Is(err, swarm.ErrNotSettled) {
		t.Fatalf("a crash-looping first deploy: %v, %v; want ErrNotSettled", v, err)
	}
	st, v, err := swarm.Follow(context.Background(), e, healthy, "1.0.0+a", time.Minute, nil)
	if err != nil || v.Outcome != metav1.Outcome_OUTCOME_SUCCEEDED {
		t.Fatalf("a healthy first deploy: %v, %v", v, err)
	}
	if app := st.App(); st.At.Sub(app.RunningSince) < app.Update.Monitor {
		t.Fatalf("settled after its task ran %s, monitor %s", st.At.Sub(app.RunningSince), app.Update.Monitor)
	}
}
