package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// TestScenarios runs testdata/scenarios: real operators, each a clone of
// their own driven by separate meta processes, sharing a log through
// remotes made the way people make them (a plain `git init --bare`, which
// names master, and git daemon), while someone does what people do to a
// git repository: commit -a over a record, push junk from a forge, force-
// push an older history, edit an env file offline. Each scenario says
// which commands still work and what they print, and ends with the
// documented way out: every clone agrees, git fsck is clean, and meta
// verify reports exactly the quarantined commits.
func TestScenarios(t *testing.T) {
	for _, tool := range []string{"age-keygen", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not on PATH: .ci/run installs it", tool)
		}
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/scenarios",
		Setup: func(env *testscript.Env) error {
			scriptEnv(env)
			// Nobody's ~/.gitconfig: a plain `git init --bare` names master.
			env.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"gitdaemon": gitDaemon,
			"forge":     forgeRecord,
			"agree":     agree,
		},
	})
}

// gitdaemon DIR serves the repositories under DIR with git daemon, pushes
// allowed, until the script ends, and sets $GITD to its git:// URL.
func gitDaemon(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: gitdaemon DIR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ts.Fatalf("find a port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	base := ts.MkAbs(args[0])
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--informative-errors",
		"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--base-path="+base, base)
	logf, err := os.Create(ts.MkAbs("gitdaemon.log"))
	ts.Check(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: the daemon forks a git per connection, and
	// the end of the script ends them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		ts.Fatalf("git daemon: %v", err)
	}
	ts.Defer(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
	})
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 10*time.Second {
			ts.Fatalf("git daemon did not listen on %d", port)
		}
	}
	ts.Setenv("GITD", fmt.Sprintf("git://127.0.0.1:%d", port))
}

// forge GLOB FIELD=VALUE... rewrites the event recorded at the one file
// GLOB matches (in the script's work directory) with FIELD set: a
// well-formed event, at its path, that says something its first commit did
// not. FIELD is version or message.
func forgeRecord(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: forge GLOB FIELD=VALUE...")
	}
	matches, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(matches) != 1 {
		ts.Fatalf("forge: %s matches %d files, want one", args[0], len(matches))
	}
	p := matches[0]
	data, err := os.ReadFile(p)
	ts.Check(err)
	ev, err := record.Unmarshal(data)
	ts.Check(err)
	for _, kv := range args[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "version":
			ev.Version = v
		case "message":
			ev.Message = v
		default:
			ts.Fatalf("forge: no field %s", k)
		}
	}
	out, err := record.Marshal(ev)
	ts.Check(err)
	ts.Check(os.WriteFile(p, out, 0o644))
}

// agree DIR... syncs each clone (twice round, so every one has what every
// other pushed) and checks they hold the same branch tip and answer `meta
// ls --json` and `meta log --json` alike, that git fsck finds nothing
// wrong in any, and that none has a change meta does not know of.
func agree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: agree DIR DIR...")
	}
	run := func(dir, name string, arg ...string) string {
		dir = ts.MkAbs(dir)
		if name == "git" {
			arg = append([]string{"-C", dir}, arg...)
		} else {
			arg = append([]string{"--dir", dir}, arg...)
		}
		if err := ts.Exec(name, arg...); err != nil {
			ts.Fatalf("%s %s: %v\n%s", name, strings.Join(arg, " "), err, ts.ReadFile("stderr"))
		}
		return ts.ReadFile("stdout")
	}
	for round := 0; round < 2; round++ {
		for _, d := range args {
			run(d, "meta", "sync")
		}
	}
	var first map[string]string
	for _, d := range args {
		got := map[string]string{
			"tip": run(d, "git", "rev-parse", "HEAD"),
			"ls":  run(d, "meta", "--offline", "ls", "--json"),
			"log": run(d, "meta", "--offline", "log", "--json"),
		}
		if out := run(d, "git", "fsck", "--no-dangling", "--no-progress"); strings.TrimSpace(out) != "" {
			ts.Fatalf("%s: git fsck: %s", d, out)
		}
		if out := run(d, "git", "status", "--porcelain"); strings.TrimSpace(out) != "" {
			ts.Fatalf("%s: changes after agreeing:\n%s", d, out)
		}
		if first == nil {
			first = got
			continue
		}
		for k, v := range got {
			if v != first[k] {
				ts.Fatalf("%s and %s disagree on %s:\n%s\n---\n%s", args[0], d, k, first[k], v)
			}
		}
	}
	ts.Logf("%d clones agree at %s", len(args), strings.TrimSpace(first["tip"]))
}
