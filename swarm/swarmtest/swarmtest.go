// Package swarmtest runs tests against a real Docker Engine in Swarm mode:
// the one $META_TEST_DOCKER_HOST names (bash .ci/run starts one). It
// builds the test image (FROM scratch, a small static Go program: no
// registry is reachable), deploys stacks from compose texts with the
// labels abra puts on an app, changes and removes them with the docker
// CLI, and waits for conditions.
//
// Tests are skipped when $META_TEST_DOCKER_HOST is unset, unless
// $META_TEST_SWARM=required (CI), when they fail instead. The Engine is
// shared: every stack gets a unique name and is removed when its test
// ends.
package swarmtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/swarm"
	mswarm "github.com/moby/moby/api/types/swarm"
)

// Env names the test Engine; Required, set to "required", makes its
// absence a failure.
const (
	Env      = "META_TEST_DOCKER_HOST"
	Required = "META_TEST_SWARM"
)

// Swarm is the test Engine.
type Swarm struct {
	Host swarm.Host
}

var checked sync.Map // DOCKER_HOST -> error of the manager check

// Engine is the Engine of $META_TEST_DOCKER_HOST, checked (once per test
// process) to answer and to be a swarm manager. Without the variable the
// test is skipped, or fails when $META_TEST_SWARM=required.
func Engine(t testing.TB) *Swarm {
	t.Helper()
	host := os.Getenv(Env)
	if host == "" {
		if os.Getenv(Required) == "required" {
			t.Fatalf("$%s is unset and $%s=required: this test needs a Docker Engine in Swarm mode (bash .ci/run starts one)", Env, Required)
		}
		t.Skipf("no Docker Engine in Swarm mode: set $%s (e.g. unix:///tmp/dockerd/docker.sock) to run this test", Env)
	}
	h := swarm.Host{DockerHost: host}
	v, ok := checked.Load(host)
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		e, err := swarm.Dial(ctx, h)
		cancel()
		if err == nil {
			e.Close()
		}
		v, _ = checked.LoadOrStore(host, err)
	}
	if err, _ := v.(error); err != nil {
		t.Fatalf("$%s=%s: %v", Env, host, err)
	}
	return &Swarm{Host: h}
}

// Dial connects to the Engine, closed when the test ends.
func (s *Swarm) Dial(t testing.TB) swarm.Engine {
	t.Helper()
	e, err := swarm.Dial(context.Background(), s.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Docker runs the docker CLI against the Engine and returns its output;
// a failure fails the test.
func (s *Swarm) Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.docker(nil, args...)
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (s *Swarm) docker(stdin io.Reader, args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+s.Host.DockerHost, "DOCKER_CLI_HINTS=false")
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w\n%s", err, out.String())
	}
	return out.String(), err
}

var (
	imageOnce sync.Once
	imageTag  string
	imageErr  error
)

// Image is the test image on the Engine at host, built once per test
// process: FROM scratch, holding testdata/app (see its doc: it sleeps,
// CRASH_AFTER makes it exit 1, `/app health` is its health check). Its
// tag is the hash of the program's source, so test processes running at
// once share it.
func Image(t testing.TB, host string) string {
	t.Helper()
	imageOnce.Do(func() { imageTag, imageErr = buildImage(host) })
	if imageErr != nil {
		t.Fatalf("build the test image: %v", imageErr)
	}
	return imageTag
}

// Image is the test image on this Engine.
func (s *Swarm) Image(t testing.TB) string { return Image(t, s.Host.DockerHost) }

func buildImage(host string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "testdata", "app")
	code, err := os.ReadFile(filepath.Join(src, "main.go"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(code, runtime.Version()...))
	tag := "meta-swarmtest:" + hex.EncodeToString(sum[:6])
	s := &Swarm{Host: swarm.Host{DockerHost: host}}
	if _, err := s.docker(nil, "image", "inspect", "--format", "{{.Id}}", tag); err == nil {
		return tag, nil
	}
	dir, err := os.MkdirTemp("", "swarmtest-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "app"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", src, err, out)
	}
	dockerfile := "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	// The classic builder: Debian's docker.io has no buildx, and the
	// image needs none of BuildKit.
	cmd := exec.Command("docker", "build", "-q", "-t", tag, dir)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+host, "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build: %w\n%s", err, out)
	}
	return tag, nil
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// StackName is a stack name unique to this test and run: the test's name,
// lower case, cut short, and a random suffix (stack names end up in
// service and network names, which Docker bounds).
func StackName(t testing.TB) string {
	name := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	name = strings.TrimPrefix(name, "test")
	if len(name) > 24 {
		name = name[:24]
	}
	b := make([]byte, 3)
	rand.Read(b)
	return "mt_" + strings.Trim(name, "_") + "_" + hex.EncodeToString(b)
}

// App is the `app` service of a test stack, with the labels abra sets.
type App struct {
	// Version, Recipe, Chaos and ChaosVersion are the coop-cloud labels;
	// Recipe defaults to "swarmtest", ChaosVersion to "false" as abra
	// writes it without --chaos.
	Version, Recipe string
	Chaos           bool
	ChaosVersion    string
	// Replicas defaults to 1.
	Replicas int
	// Env is the app's environment (CRASH_AFTER, UNHEALTHY).
	Env map[string]string
	// Healthcheck adds a health check of `/app health` every second.
	Healthcheck bool
	// UpdateConfig is the body of deploy.update_config, one "key: value"
	// a line; empty leaves Swarm's defaults.
	UpdateConfig string
	// RollbackConfig is the body of deploy.rollback_config.
	RollbackConfig string
	// Others are more services of the stack, running the same image.
	Others []string
}

// Compose is the compose file for stack with a as its app service.
func (a App) Compose(stack, image string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: \"3.8\"\nservices:\n  app:\n    image: %s\n", image)
	if len(a.Env) > 0 {
		b.WriteString("    environment:\n")
		keys := make([]string, 0, len(a.Env))
		for k := range a.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "      %s: %q\n", k, a.Env[k])
		}
	}
	if a.Healthcheck {
		b.WriteString("    healthcheck:\n      test: [\"CMD\", \"/app\", \"health\"]\n      interval: 1s\n      timeout: 1s\n      retries: 1\n      start_period: 1s\n")
	}
	replicas := a.Replicas
	if replicas == 0 {
		replicas = 1
	}
	recipe := a.Recipe
	if recipe == "" {
		recipe = "swarmtest"
	}
	cv := a.ChaosVersion
	if cv == "" {
		cv = "false"
	}
	fmt.Fprintf(&b, "    deploy:\n      replicas: %d\n      labels:\n", replicas)
	p := "coop-cloud." + stack + "."
	fmt.Fprintf(&b, "        %sversion: %q\n        %srecipe: %q\n        %schaos: \"%t\"\n        %schaos-version: %q\n", p, a.Version, p, recipe, p, a.Chaos, p, cv)
	block := func(name, body string) {
		if body == "" {
			return
		}
		fmt.Fprintf(&b, "      %s:\n", name)
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			fmt.Fprintf(&b, "        %s\n", strings.TrimSpace(line))
		}
	}
	block("update_config", a.UpdateConfig)
	block("rollback_config", a.RollbackConfig)
	for _, o := range a.Others {
		fmt.Fprintf(&b, "  %s:\n    image: %s\n", o, image)
	}
	return b.String()
}

var removing sync.Map // stack -> struct{}: removal registered

// Deploy runs `docker stack deploy -c FILE stack` with compose as FILE,
// as abra does (it returns once the specs are written, before Swarm
// updates anything). The first deploy of a stack removes it when the test
// ends.
func (s *Swarm) Deploy(t testing.TB, stack, compose string) {
	t.Helper()
	if _, loaded := removing.LoadOrStore(stack, struct{}{}); !loaded {
		t.Cleanup(func() {
			if err := s.remove(stack); err != nil {
				t.Errorf("remove stack %s: %v", stack, err)
			}
		})
	}
	file := filepath.Join(t.TempDir(), "compose.yml")
	if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Docker(t, "stack", "deploy", "--resolve-image", "never", "-c", file, stack)
}

// Remove runs `docker stack rm stack` and waits until its services and
// networks are gone.
func (s *Swarm) Remove(t testing.TB, stack string) {
	t.Helper()
	if err := s.remove(stack); err != nil {
		t.Fatal(err)
	}
}

func (s *Swarm) remove(stack string) error {
	// docker stack rm fails on a stack being removed already (a test
	// removed it) and on a network a stopping task still holds; what
	// counts is that the stack goes, which the loop checks.
	s.docker(nil, "stack", "rm", stack)
	deadline := time.Now().Add(60 * time.Second)
	lastRm := time.Now()
	for {
		svcs, err1 := s.docker(nil, "service", "ls", "-q", "--filter", "label="+swarm.NamespaceLabel+"="+stack)
		nets, err2 := s.docker(nil, "network", "ls", "-q", "--filter", "label="+swarm.NamespaceLabel+"="+stack)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if strings.TrimSpace(svcs+nets) == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stack %s: still there a minute after docker stack rm: services %q, networks %q", stack, svcs, nets)
		}
		time.Sleep(250 * time.Millisecond)
		if strings.TrimSpace(svcs) == "" && time.Since(lastRm) > 2*time.Second {
			// A network a stopping task held was not removed ("in use
			// by task"): now that the services are gone, again.
			s.docker(nil, "stack", "rm", stack)
			lastRm = time.Now()
		}
	}
}

// LabelAdd runs `docker service update --label-add key=value service`, a
// hand-made change of a label (it returns without waiting for Swarm).
func (s *Swarm) LabelAdd(t testing.TB, service, key, value string) {
	t.Helper()
	s.Docker(t, "service", "update", "--detach", "--label-add", key+"="+value, service)
}

// Scale runs `docker service scale service=n` without waiting.
func (s *Swarm) Scale(t testing.TB, service string, n int) {
	t.Helper()
	s.Docker(t, "service", "scale", "--detach", fmt.Sprintf("%s=%d", service, n))
}

// Eventually calls cond until it says done, failing the test after
// timeout with what cond said last.
func Eventually(t testing.TB, timeout time.Duration, cond func() (done bool, saw string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, saw := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s; last saw: %s", timeout, saw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Capture is what the Engine answered for one look at a stack, kept as
// the Engine wrote it: the service list (with status) and the task list
// of those services.
type Capture struct {
	At       time.Time `json:"at"`
	Services any       `json:"services"`
	Tasks    any       `json:"tasks"`
}

// Capture asks the Engine (unix:// or plain tcp://), the way Look does,
// for the raw answers about stack.
func (s *Swarm) Capture(t testing.TB, stack string) Capture {
	t.Helper()
	u, err := url.Parse(s.Host.DockerHost)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	base := "http://" + u.Host
	if u.Scheme == "unix" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", u.Path)
		}
		base = "http://docker"
	}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	get := func(path string, filters string, v any) {
		t.Helper()
		resp, err := c.Get(base + "/v1.41" + path + "&filters=" + url.QueryEscape(filters))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %v: %s", path, resp.Status, err, data)
		}
		if err := jsonUnmarshal(data, v); err != nil {
			t.Fatal(err)
		}
	}
	var cap Capture
	cap.At = time.Now().UTC()
	var services []map[string]any
	get("/services?status=true", `{"label":["`+swarm.NamespaceLabel+"="+stack+`"]}`, &services)
	cap.Services = services
	ids := make([]string, len(services))
	for i, svc := range services {
		ids[i], _ = svc["ID"].(string)
	}
	cap.Tasks = []any{}
	if len(ids) > 0 {
		var tasks []any
		get("/tasks?", `{"service":["`+strings.Join(ids, `","`)+`"]}`, &tasks)
		cap.Tasks = tasks
	}
	return cap
}

// jsonUnmarshal keeps numbers as the Engine wrote them.
func jsonUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// Captured is stack as a look saw it in the committed capture name:
// swarm/testdata/engine/name.json, what a real Engine answered (written by
// `go test ./swarm -run TestEngine -capture`, the run's stack renamed
// "mystack"), with "mystack" renamed stack throughout (its services and
// coop-cloud labels), converted by swarm.StacksFrom as Look converts. A
// capture of no services is the stack missing. Fixtures of other packages
// are these real shapes, not hand-built ones.
func Captured(t testing.TB, name, stack string) *swarm.Stack {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "testdata", "engine", name+".json"))
	if err != nil {
		t.Fatalf("capture %s: %v", name, err)
	}
	var c struct {
		At       time.Time        `json:"at"`
		Services []mswarm.Service `json:"services"`
		Tasks    []mswarm.Task    `json:"tasks"`
	}
	if err := json.Unmarshal(bytes.ReplaceAll(data, []byte(CapturedStack), []byte(stack)), &c); err != nil {
		t.Fatalf("capture %s: %v", name, err)
	}
	if st := swarm.StacksFrom(c.Services, c.Tasks, c.At)[stack]; st != nil {
		return st
	}
	return &swarm.Stack{Name: stack, At: c.At}
}

// CapturedStack is the name a capture gives the stack it saw, so
// captures do not depend on the run that wrote them.
const CapturedStack = "mystack"
