package opsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

// scripted is an Engine whose looks at the stack are given in order; the
// last is repeated. The real engine's looks are in the cmd/meta tests on
// a real Swarm; here the rule around them is.
type scripted struct {
	mu     sync.Mutex
	looks  []*swarm.Stack
	asked  int
	during func(n int) // called before look n answers
}

func (e *scripted) Look(ctx context.Context, stack string) (*swarm.Stack, error) {
	e.mu.Lock()
	n := e.asked
	e.asked++
	e.mu.Unlock()
	if e.during != nil {
		e.during(n)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := *e.looks[min(n, len(e.looks)-1)]
	st.Name, st.At = stack, time.Now()
	return &st, nil
}
func (e *scripted) Stacks(context.Context) (map[string]*swarm.Stack, error) { return nil, nil }
func (e *scripted) Changes(context.Context) (<-chan string, <-chan error)   { return nil, nil }
func (e *scripted) Host() string                                            { return "unix:///scripted.sock" }
func (e *scripted) Close() error                                            { return nil }

const stackName = "app_example_com"

// look is one look at the app's stack: its app service at version, in
// update state, with running of one task.
func look(version, state, message string, running int) *swarm.Stack {
	p := "coop-cloud." + stackName + "."
	return &swarm.Stack{Services: []swarm.ServiceState{{
		Name:        stackName + "_app",
		Labels:      map[string]string{p + "version": version, p + "recipe": recipe, p + "chaos": "false"},
		UpdateState: state, UpdateMessage: message,
		UpdatedAt: time.Now().Add(-time.Minute),
		Running:   running, Desired: 1,
	}}}
}

// A deploy abra says succeeded is recorded with what Swarm then did.
func TestExecRecordsWhatSwarmDid(t *testing.T) {
	const rolledBack = "update rolled back due to failure or early termination of task abc"
	tests := []struct {
		name    string
		looks   []*swarm.Stack
		dialErr error
		timeout time.Duration
		cancel  bool // Ctrl-C while following
		outcome metav1.Outcome
		state   string
		version string
		warn    string
	}{
		{name: "completed", looks: []*swarm.Stack{look("4.0.0+v1.93.0", "updating", "update in progress", 1), look("4.1.0+v1.94.0", "completed", "update completed", 1)},
			outcome: metav1.Outcome_OUTCOME_SUCCEEDED, state: fold.StateDeployed, version: "4.1.0+v1.94.0"},
		{name: "rolled back", looks: []*swarm.Stack{look("4.1.0+v1.94.0", "updating", "update in progress", 1), look("4.1.0+v1.94.0", "rollback_started", rolledBack, 1), look("4.0.0+v1.93.0", "rollback_completed", "rollback completed", 1)},
			outcome: metav1.Outcome_OUTCOME_ROLLED_BACK, state: fold.StateRolledBack, version: "4.0.0+v1.93.0", warn: "Swarm did not keep the upgrade of app.example.com to 4.1.0+v1.94.0: rolled-back"},
		{name: "paused", looks: []*swarm.Stack{look("4.1.0+v1.94.0", "paused", "update paused due to failure or early termination of task abc", 0)},
			outcome: metav1.Outcome_OUTCOME_PAUSED, state: fold.StatePaused, version: "4.0.0+v1.93.0", warn: "paused"},
		{name: "engine unreachable", dialErr: errors.New("connect: no such file"),
			outcome: metav1.Outcome_OUTCOME_PENDING, state: fold.StatePending, version: "4.0.0+v1.93.0", warn: "could not ask Swarm what it did (the Engine from the local Docker socket): connect: no such file"},
		{name: "not waiting", timeout: -1, looks: []*swarm.Stack{look("4.1.0+v1.94.0", "completed", "", 1)},
			outcome: metav1.Outcome_OUTCOME_PENDING, state: fold.StatePending, version: "4.0.0+v1.93.0", warn: "not waiting for Swarm"},
		{name: "timeout", timeout: 1200 * time.Millisecond, looks: []*swarm.Stack{look("4.1.0+v1.94.0", "updating", "update in progress", 1)},
			outcome: metav1.Outcome_OUTCOME_PENDING, state: fold.StatePending, version: "4.0.0+v1.93.0", warn: "Swarm had not settled the update"},
		{name: "ctrl-c", cancel: true, looks: []*swarm.Stack{look("4.1.0+v1.94.0", "updating", "update in progress", 1)},
			outcome: metav1.Outcome_OUTCOME_PENDING, state: fold.StatePending, version: "4.0.0+v1.93.0", warn: "is recorded as pending: `meta observe app.example.com --docker` or a running `meta serve` settles it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			w.envFile(s1, domain, "4.0.0+v1.93.0")
			w.mustRun(0, "app", "deploy", domain)
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			eng := &scripted{looks: tt.looks}
			if tt.cancel {
				eng.during = func(n int) {
					if n == 2 {
						cancel()
					}
				}
			}
			r := w.runner(Options{})
			r.Follow = &Follow{Timeout: tt.timeout, Getenv: func(string) string { return "" }, Dial: func(ctx context.Context, h swarm.Host) (swarm.Engine, error) {
				if h.DockerHost != swarm.DefaultHost {
					t.Errorf("dialled %s, want the local socket", h.DockerHost)
				}
				if tt.dialErr != nil {
					return nil, tt.dialErr
				}
				return eng, nil
			}}
			w.order("version", "4.1.0+v1.94.0")
			res, err := r.Run(runCtx, []string{w.abra, "app", "upgrade", domain})
			if err != nil || res.Code != 0 || len(res.Recorded) != 1 {
				t.Fatalf("run: %+v, %v", res, err)
			}
			ev := res.Recorded[0]
			if ev.GetStack() != stackName {
				t.Errorf("the deploy says stack %q, want %q", ev.GetStack(), stackName)
			}
			if ev.GetOutcome() != tt.outcome {
				t.Fatalf("outcome %s, want %s", ev.GetOutcome(), tt.outcome)
			}
			if (ev.GetSwarm() == nil) != (tt.dialErr != nil || tt.timeout < 0) {
				t.Fatalf("what Swarm did: %v", ev.GetSwarm())
			}
			if ev.GetSwarm() != nil && ev.GetSwarm().GetSource() != "exec" {
				t.Errorf("source %q", ev.GetSwarm().GetSource())
			}
			h := w.head(domain)
			if h.State != tt.state || h.Version != tt.version {
				t.Fatalf("head %s %s, want %s %s", h.State, h.Version, tt.state, tt.version)
			}
			warned := strings.Join(w.warned(), "\n")
			if tt.warn == "" && warned != "" || !strings.Contains(warned, tt.warn) {
				t.Fatalf("warnings %q, want one saying %q", warned, tt.warn)
			}
		})
	}
}

// A failed abra is recorded failed, without asking Swarm.
func TestExecDoesNotFollowWhatAbraFailed(t *testing.T) {
	w := newWorld(t, nil)
	w.envFile(s1, domain, "4.0.0+v1.93.0")
	w.mustRun(0, "app", "deploy", domain)
	r := w.runner(Options{})
	r.Follow = &Follow{Dial: func(context.Context, swarm.Host) (swarm.Engine, error) {
		t.Error("Swarm was asked about a deploy abra failed")
		return nil, errors.New("no")
	}}
	w.order("exit", "1")
	res, err := r.Run(ctx, []string{w.abra, "app", "upgrade", domain, "4.1.0+v1.94.0"})
	if err != nil || res.Code != 1 || res.Recorded[0].GetOutcome() != metav1.Outcome_OUTCOME_FAILED {
		t.Fatalf("%+v, %v", res, err)
	}
}

// The Engine of a server is found as abra finds it.
func TestEngineOf(t *testing.T) {
	home := t.TempDir()
	cfg, err := config.Parse([]byte("version: 3\nservers:\n  s1.example.com: {env: prod, docker_host: 'ssh://root@s1.example.com'}\n  s2.example.com: {env: prod, docker_host: 'tcp://10.0.0.2:2376', docker_cert_path: ~/certs}\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": home}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		server, dockerHost, env, certs, from string
	}{
		{server: s1, dockerHost: "ssh://root@s1.example.com", from: "docker_host of server s1.example.com in meta.yaml"},
		{server: s2, dockerHost: "tcp://10.0.0.2:2376", certs: filepath.Join(home, "certs"), from: "docker_host of server s2.example.com"},
		{server: s3, dockerHost: swarm.DefaultHost, from: "the local Docker socket"},
		{server: s3, env: "unix:///run/user/docker.sock", dockerHost: "unix:///run/user/docker.sock", from: "$DOCKER_HOST"},
	}
	for _, tt := range tests {
		env["DOCKER_HOST"] = tt.env
		h, from := EngineOf(cfg, tt.server, getenv)
		if h.DockerHost != tt.dockerHost || h.CertPath != tt.certs || !strings.Contains(from, tt.from) {
			t.Errorf("%s: %+v from %q, want %s %q from %q", tt.server, h, from, tt.dockerHost, tt.certs, tt.from)
		}
	}
	// abra's docker context for a server comes before $DOCKER_HOST.
	dockerContext(t, home, s3, "ssh://deploy@s3.example.com")
	env["DOCKER_HOST"] = "unix:///elsewhere.sock"
	if h, from := EngineOf(cfg, s3, getenv); h.DockerHost != "ssh://deploy@s3.example.com" || from != "docker context "+s3 {
		t.Errorf("with a docker context: %+v from %q", h, from)
	}
}

// dockerContext makes a docker context named name for host under home,
// as the docker CLI lays it out (abra's tests check that layout against
// the CLI).
func dockerContext(t *testing.T, home, name, host string) {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	dir := filepath.Join(home, ".docker", "contexts", "meta", hex.EncodeToString(sum[:]))
	write(t, filepath.Join(dir, "meta.json"), `{"Name":"`+name+`","Metadata":{},"Endpoints":{"docker":{"Host":"`+host+`","SkipTLSVerify":false}}}`, 0o644)
}

// A first deploy abra did is recorded whatever Swarm did with it: pending
// (the Engine unreachable), rolled back, paused. Only what abra itself
// failed on an app the log does not know (a typo) starts no log.
func TestExecRecordsAFirstDeployWhateverSwarmDid(t *testing.T) {
	tests := []struct {
		name    string
		looks   []*swarm.Stack
		dialErr error
		outcome metav1.Outcome
		state   string
	}{
		{name: "unreachable", dialErr: errors.New("connect: no such file"), outcome: metav1.Outcome_OUTCOME_PENDING, state: fold.StatePending},
		{name: "paused", looks: []*swarm.Stack{look("4.0.0+v1.93.0", "paused", "update paused due to failure", 0)}, outcome: metav1.Outcome_OUTCOME_PAUSED, state: fold.StatePaused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			w.envFile(s1, domain, "4.0.0+v1.93.0")
			r := w.runner(Options{})
			r.Follow = &Follow{Getenv: func(string) string { return "" }, Dial: func(context.Context, swarm.Host) (swarm.Engine, error) {
				if tt.dialErr != nil {
					return nil, tt.dialErr
				}
				return &scripted{looks: tt.looks}, nil
			}}
			res, err := r.Run(ctx, []string{w.abra, "app", "deploy", domain})
			if err != nil || res.Code != 0 || len(res.Recorded) != 1 || res.Recorded[0].GetOutcome() != tt.outcome {
				t.Fatalf("run: %+v, %v; warnings %q", res, err, w.warned())
			}
			if h := w.head(domain); h.State != tt.state {
				t.Fatalf("head %s, want %s", h.State, tt.state)
			}
		})
	}
}

// --settle-timeout bounds the whole wait, an Engine that never answers
// included.
func TestSettleTimeoutBoundsAHungEngine(t *testing.T) {
	w := newWorld(t, nil)
	w.envFile(s1, domain, "4.0.0+v1.93.0")
	r := w.runner(Options{})
	r.Follow = &Follow{Timeout: time.Second, Getenv: func(string) string { return "" }, Dial: func(ctx context.Context, _ swarm.Host) (swarm.Engine, error) {
		<-ctx.Done() // accepts, and never answers
		return nil, ctx.Err()
	}}
	start := time.Now()
	res, err := r.Run(ctx, []string{w.abra, "app", "deploy", domain})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("waited %s for an Engine that never answers, timeout 1s", took)
	}
	if err != nil || res.Recorded[0].GetOutcome() != metav1.Outcome_OUTCOME_PENDING {
		t.Fatalf("%+v, %v", res, err)
	}
}
