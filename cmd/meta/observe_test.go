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
	// Another stack's name: the Engine has no such app service.
	_, stderr, err := metaFull(t, dir, "observe", "a.example.com", "--docker", "--stack", stack+"_gone")
	var exit *exitError
	if !errors.As(err, &exit) || !strings.Contains(stderr, "has no service "+stack+"_gone_app") {
		t.Fatalf("observe --docker of a missing stack: %v\n%s", err, stderr)
	}
}
