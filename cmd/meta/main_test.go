package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	// Under -race every process sleeps a second at exit, waiting for late
	// race reports; the meta processes tests start report on exit code.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	testscript.Main(m, map[string]func(){
		"meta": func() { os.Exit(Main()) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script: the real
// meta main against real git repositories.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("GORACE", "atexit_sleep_ms=0")
			env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			env.Setenv("GIT_AUTHOR_NAME", "Git")
			env.Setenv("GIT_AUTHOR_EMAIL", "git@example.com")
			env.Setenv("GIT_COMMITTER_NAME", "Git")
			env.Setenv("GIT_COMMITTER_EMAIL", "git@example.com")
			return nil
		},
	})
}
