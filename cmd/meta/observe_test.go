package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/swarm/swarmtest"
)

// meta observe --docker asks a real Engine, through swarm's client.
func TestObserveDockerOnARealSwarm(t *testing.T) {
	sw := swarmtest.Engine(t)
	stack := swarmtest.StackName(t)
	sw.Deploy(t, stack, swarmtest.App{Version: "1.0.0+a", Others: []string{"db"}}.Compose(stack, sw.Image(t)))
	t.Setenv("DOCKER_HOST", sw.Host.DockerHost)
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := meta(t, dir, "append", "deploy", "a.example.com", "--version", "1.0.0+a"); err != nil {
		t.Fatal(err)
	}
	out, err := meta(t, dir, "observe", "a.example.com", "--docker", "--stack", stack, "--json")
	if err != nil || !strings.Contains(out, `"recorded":true`) || !strings.Contains(out, `"observed_version":"1.0.0+a"`) {
		t.Fatalf("observe --docker: %v\n%s", err, out)
	}
	// The app's stack gone: recorded, and the app is down.
	out, err = meta(t, dir, "observe", "a.example.com", "--docker", "--stack", stack+"_gone", "--json")
	if err != nil || !strings.Contains(out, `"missing":true`) || !strings.Contains(out, `"drift":"down"`) {
		t.Fatalf("observe --docker of a gone stack: %v\n%s", err, out)
	}
	// An app the log does not know, whose stack the Engine has not: a
	// typo, refused, nothing recorded.
	_, stderr, err := metaFull(t, dir, "observe", "typo.example.com", "--docker", "--stack", stack+"_gone")
	var exit *exitError
	if !errors.As(err, &exit) || !strings.Contains(stderr, "has no service "+stack+"_gone_app") {
		t.Fatalf("observe --docker of an unknown app: %v\n%s", err, stderr)
	}
	if out, _ := meta(t, dir, "ls"); strings.Contains(out, "typo.example.com") {
		t.Fatalf("the typo was recorded:\n%s", out)
	}
}
