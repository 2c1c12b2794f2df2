package main

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"git.coopcloud.tech/coop-cloud/meta/swarm/swarmtest"
)

// TestSwarm runs testdata/swarm on a real Docker Engine in Swarm mode
// ($META_TEST_DOCKER_HOST, see swarmtest): the scripts deploy real stacks
// of the test image ($IMAGE), each under a stack name of its own
// ($STACK, or names starting with it), with the docker CLI and meta both
// reaching the Engine at $DOCKER_HOST.
func TestSwarm(t *testing.T) {
	engine := swarmtest.Engine(t)
	image := engine.Image(t)
	var mu sync.Mutex
	var stacks []string
	// A script's stacks are $STACK and any name starting with it (one per
	// app, e.g. ${STACK}_matrix): all are removed at the end, those the
	// scripts removed already included.
	t.Cleanup(func() {
		var mine []string
		for _, name := range strings.Fields(engine.Docker(t, "stack", "ls", "--format", "{{.Name}}")) {
			for _, s := range stacks {
				if strings.HasPrefix(name, s) {
					mine = append(mine, name)
					break
				}
			}
		}
		if len(mine) > 0 {
			// One rm for all, so that Swarm removes them at once;
			// Remove then waits for each.
			engine.Docker(t, append([]string{"stack", "rm"}, mine...)...)
		}
		for _, s := range append(mine, stacks...) {
			engine.Remove(t, s)
		}
	})
	testscript.Run(t, testscript.Params{
		Dir: "testdata/swarm",
		Setup: func(env *testscript.Env) error {
			b := make([]byte, 4)
			rand.Read(b)
			stack := "mt_script_" + hex.EncodeToString(b)
			mu.Lock()
			stacks = append(stacks, stack)
			mu.Unlock()
			scriptEnv(env)
			env.Setenv("DOCKER_HOST", engine.Host.DockerHost)
			env.Setenv("IMAGE", image)
			env.Setenv("STACK", stack)
			return nil
		},
	})
}
