package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	// Under -race every process sleeps a second at exit, waiting for late
	// race reports; the meta processes tests start report on exit code.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	testscript.Main(withHelper{m}, map[string]func(){
		"meta": func() { os.Exit(Main()) },
	})
}

// withHelper runs the tests with the real meta-seal binary on PATH, built
// once for the run. Linking it in-process instead would put sops into
// every meta process the tests start, and slow them all. It is not built
// when the test binary runs as the meta command.
type withHelper struct{ m *testing.M }

func (w withHelper) Run() int {
	bin, err := os.MkdirTemp("", "meta-seal-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bin)
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "meta-seal"), "../meta-seal")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build meta-seal: %v\n%s", err, out)
		return 1
	}
	os.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return w.m.Run()
}

// TestScripts runs the end-to-end scripts in testdata/script: the real
// meta main against real git repositories, and for env files the real age,
// age-keygen and sops commands, which .ci/run installs.
func TestScripts(t *testing.T) {
	for _, tool := range []string{"age-keygen", "sops"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not on PATH: .ci/run installs it (go install, pinned)", tool)
		}
	}
	fixtures, err := filepath.Abs("../../swarm/testdata")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			scriptEnv(env)
			env.Setenv("FIXTURES", fixtures)
			return nil
		},
	})
}

// scriptEnv is what every end-to-end script's processes see: no machine
// git configuration, git's identity as "Git", quick exits under -race,
// sops quiet.
func scriptEnv(env *testscript.Env) {
	env.Setenv("GORACE", "atexit_sleep_ms=0")
	env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	env.Setenv("GIT_AUTHOR_NAME", "Git")
	env.Setenv("GIT_AUTHOR_EMAIL", "git@example.com")
	env.Setenv("GIT_COMMITTER_NAME", "Git")
	env.Setenv("GIT_COMMITTER_EMAIL", "git@example.com")
	env.Setenv("SOPS_DISABLE_VERSION_CHECK", "1")
}
