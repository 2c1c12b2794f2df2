package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"git.coopcloud.tech/coop-cloud/meta/notify"
)

// operator is one person at their own clone, with their own age key.
type operator struct {
	name, dir, key, recipient string
	env                       []string
}

func newTestOperator(t *testing.T, name string) *operator {
	t.Helper()
	home := t.TempDir()
	key := filepath.Join(home, name+".key")
	if out, err := exec.Command("age-keygen", "-o", key).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v\n%s", err, out)
	}
	pub, err := exec.Command("age-keygen", "-y", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return &operator{
		name: name, dir: filepath.Join(home, "log"), key: key, recipient: strings.TrimSpace(string(pub)),
		env: []string{"META_OPERATOR=" + name + " <" + name + "@example.com>", "SOPS_AGE_KEY_FILE=" + key, "HOME=" + home},
	}
}

// run runs meta as o, with stdin, and returns stdout, stderr and the exit
// code.
func (o *operator) run(t *testing.T, stdin string, extraEnv []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("meta", append([]string{"--dir", o.dir}, args...)...)
	cmd.Env = append(append(os.Environ(), o.env...), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("meta %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// must runs meta as o and fails the test unless it succeeds.
func (o *operator) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := o.run(t, "", nil, args...)
	if code != 0 {
		t.Fatalf("%s: meta %s: exit %d\n%s", o.name, strings.Join(args, " "), code, errOut)
	}
	return out
}

// Distinctive values planted through every path that handles one must show
// up in `meta env get` and nowhere else: not in any git object of the clone
// or the remote, not in any event, not in any NATS message, not in any file
// under .git, and not in anything else meta printed.
func TestEnvLeaksNoSecret(t *testing.T) {
	remote := filepath.Join(t.TempDir(), "remote.git")
	gitOut(t, filepath.Dir(remote), "init", "-q", "--bare", "-b", "main", remote)
	alice := newTestOperator(t, "alice")
	bob := newTestOperator(t, "bob")

	plants := map[string]string{
		"import":        "PLANT-import-7f3a9c",
		"comment":       "PLANT-comment-2b8d4e",
		"set-argument":  "PLANT-argument-91c5aa",
		"set-stdin":     "PLANT-stdin-4e7b12",
		"edit":          "PLANT-edit-c0ffee",
		"secret-insert": "PLANT-secret-d15ea5e",
		"flag":          "PLANT-flag-0ddba11",
		// Through meta exec and append --command, in the forms abra's
		// grammar allows (see abra.Redact and opsync's leak test).
		"exec-after-dashes": "-PLANT-exec-a11ce5",
		"exec-dash":         "-PLANT-exec-b0b0b0",
		"exec-bundled":      "PLANT-exec-c4fe00",
		"append-dash":       "--PLANT-append-d00d1e",
		"append-run":        "PLANT-append-e1e1e1",
		"append-cmd":        "PLANT-append-f00f00",
	}
	var printed strings.Builder
	keep := func(out, errOut string, code int) {
		printed.WriteString(out + errOut)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	}
	keep(alice.run(t, "", nil, "init", alice.dir, "--remote", remote, "--project", "coop", "--env", "prod"))
	// The hub runs on a clone of its own; every command nudges it.
	hubDir := filepath.Join(t.TempDir(), "hub")
	if _, err := meta(t, "", "init", hubDir, "--remote", remote); err != nil {
		t.Fatal(err)
	}
	hub := startHub(t, hubDir)
	natsFlag := hub.flags()
	keep(alice.run(t, "", nil, append(natsFlag, "operator", "add", "alice", "--age", alice.recipient)...))
	plain := filepath.Join(t.TempDir(), "app.env")
	os.WriteFile(plain, []byte("# token "+plants["comment"]+"\nDOMAIN=app.example.org\nSMTP_PASSWORD="+plants["import"]+"\n"), 0o600)
	keep(alice.run(t, "", nil, append(natsFlag, "env", "import", "app.example.org", plain)...))
	keep(alice.run(t, "", nil, append(natsFlag, "env", "set", "app.example.org", "API_TOKEN="+plants["set-argument"], "-m", "rotate the API token")...))
	keep(alice.run(t, plants["set-stdin"]+"\n", nil, append(natsFlag, "env", "set", "app.example.org", "DB_PASSWORD")...))
	editor := filepath.Join(t.TempDir(), "editor.sh")
	os.WriteFile(editor, []byte("#!/bin/sh\necho 'EDITED="+plants["edit"]+"' >> \"$1\"\n"), 0o755)
	keep(alice.run(t, "", []string{"EDITOR=" + editor}, append(natsFlag, "env", "edit", "app.example.org")...))
	keep(alice.run(t, "", nil, append(natsFlag, "append", "secret-insert", "app.example.org", "--name", "db_password", "--secret-version", "v2",
		"--command", "abra,app,secret,insert,app.example.org,db_password,v2,"+plants["secret-insert"])...))
	keep(alice.run(t, "", nil, append(natsFlag, "append", "deploy", "app.example.org", "--version", "1.0.0+1",
		"--command", "some-tool,--admin-password,"+plants["flag"])...))
	// A stand-in abra that takes any line; it refuses a flag it does not
	// know, as abra does a value starting with "-" typed without "--".
	fakeAbra := filepath.Join(t.TempDir(), "abra")
	os.WriteFile(fakeAbra, []byte("#!/bin/sh\nfor a; do [ \"$a\" = -- ] && exit 0; [ \"$a\" = "+plants["exec-dash"]+" ] && exit 1; done\nexit 0\n"), 0o755)
	execAbra := append(natsFlag, "exec", "--abra", fakeAbra, "--", "abra")
	keep(alice.run(t, "", nil, append(execAbra, "app", "secret", "insert", "app.example.org", "db_password", "v3", "--", plants["exec-after-dashes"])...))
	keep(alice.run(t, "", nil, append(execAbra, "-d", "a", "s", "-n", "i", "-tC", "app.example.org", "db_password", "v4", plants["exec-bundled"], "--trim")...))
	out, errOut, code := alice.run(t, "", nil, append(execAbra, "app", "secret", "insert", "app.example.org", "db_password", "v5", plants["exec-dash"])...)
	if printed.WriteString(out + errOut); code != 1 {
		t.Fatalf("meta exec of a failing abra: exit %d, want abra's 1: %s", code, errOut)
	}
	for what, line := range map[string]string{
		"append-dash": "abra,app,secret,insert,app.example.org,db_password,v6," + plants["append-dash"],
		"append-run":  "abra,app,run,app.example.org,app,--,mysql,-p" + plants["append-run"],
		"append-cmd":  "/usr/bin/abra,app,cmd,app.example.org,app,set_admin_pass," + plants["append-cmd"],
	} {
		keep(alice.run(t, "", nil, append(natsFlag, "append", "note", "app.example.org", "-m", what, "--command", line)...))
	}
	keep(alice.run(t, "", nil, append(natsFlag, "operator", "add", "bob", "--age", bob.recipient)...))
	keep(alice.run(t, "", nil, append(natsFlag, "env", "rekey", "app.example.org")...))
	for _, args := range [][]string{
		{"head", "app.example.org"}, {"head", "app.example.org", "--json"}, {"log", "--json"}, {"log"}, {"ls", "--json"},
		{"env", "ls", "--json"}, {"operator", "ls"}, {"verify", "--json"}, {"status"},
	} {
		keep(alice.run(t, "", nil, args...))
	}
	keep(bob.run(t, "", nil, "init", bob.dir, "--remote", remote))
	logJSON, _, _ := bob.run(t, "", nil, "log", "--json")
	printed.WriteString(logJSON)

	// The test can fail: every value is there for those who may read it.
	got, _, code := bob.run(t, "", nil, "env", "get", "app.example.org")
	if code != 0 {
		t.Fatal("bob cannot read the env he was given access to")
	}
	for what, v := range plants {
		if what == "secret-insert" || what == "flag" || strings.HasPrefix(what, "exec-") || strings.HasPrefix(what, "append-") {
			continue // never stored anywhere: abra keeps it in Docker
		}
		if !strings.Contains(got, v) {
			t.Errorf("env get lacks the %s value", what)
		}
	}

	haystacks := map[string][]byte{"what meta printed": []byte(printed.String()), "the events": []byte(logJSON)}
	for name, dir := range map[string]string{"alice's clone": alice.dir, "bob's clone": bob.dir, "the remote": remote} {
		cmd := exec.Command("git", "cat-file", "--batch-all-objects", "--batch")
		cmd.Dir = dir
		objects, err := cmd.Output()
		if err != nil || len(objects) == 0 {
			t.Fatalf("%s: cat-file: %v", name, err)
		}
		haystacks["every git object of "+name] = objects
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				data, _ := os.ReadFile(p)
				haystacks[name+": "+p] = data
			}
			return nil
		})
	}
	js, _ := jetstream.New(hub.conn(filepath.Join(hub.data, "hub.nk")))
	stream, err := js.Stream(context.Background(), notify.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	var info *jetstream.StreamInfo
	waitUntil(t, "the hub to publish what the commands did", func() bool {
		info, err = stream.Info(context.Background())
		return err == nil && info.State.Msgs >= 8
	})
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		haystacks[fmt.Sprintf("NATS message %d", seq)] = []byte(fmt.Sprint(m.Header) + string(m.Data))
	}
	for name, data := range haystacks {
		for what, v := range plants {
			if bytes.Contains(data, []byte(v)) {
				t.Errorf("the %s value leaked into %s", what, name)
			}
		}
	}
}

// Two operators change one env at once. A set that comes second is told
// and writes nothing; an edit that comes second is opened again on top of
// the first change; no change that was reported done goes missing.
func TestConcurrentEnvEdits(t *testing.T) {
	remote := filepath.Join(t.TempDir(), "remote.git")
	gitOut(t, filepath.Dir(remote), "init", "-q", "--bare", "-b", "main", remote)
	alice, bob := newTestOperator(t, "alice"), newTestOperator(t, "bob")
	alice.must(t, "init", alice.dir, "--remote", remote, "--project", "coop", "--env", "prod")
	alice.must(t, "operator", "add", "alice", "--age", alice.recipient)
	alice.must(t, "operator", "add", "bob", "--age", bob.recipient)
	plain := filepath.Join(t.TempDir(), "app.env")
	os.WriteFile(plain, []byte("A=1\n"), 0o600)
	alice.must(t, "env", "import", "app.example.org", plain)
	bob.must(t, "init", bob.dir, "--remote", remote)

	// Bob edits; while his editor is open, Alice changes the env and
	// pushes. Bob's editor opens again with his edit on top of her change,
	// and he saves it as it is: both land.
	editor := filepath.Join(t.TempDir(), "editor.sh")
	script := fmt.Sprintf("#!/bin/sh\nn=$(( $(cat \"$0.count\" 2>/dev/null || echo 0) + 1 )); echo $n > \"$0.count\"\ncp \"$1\" \"$0.seen.$n\"\n"+
		"[ $n = 1 ] || exit 0\nenv '%s' meta --dir %s env set app.example.org FROM_ALICE=1 >/dev/null || exit 9\necho FROM_BOB=1 >> \"$1\"\n",
		strings.Join(alice.env, "' '"), alice.dir)
	os.WriteFile(editor, []byte(script), 0o755)
	_, errOut, code := bob.run(t, "", []string{"EDITOR=" + editor}, "env", "edit", "app.example.org")
	if code != 0 || !strings.Contains(errOut, "meta: warning: alice (env event ") || !strings.Contains(errOut, "changed the env of app.example.org while you edited it (added FROM_ALICE); opening your edit again, on top of their change") {
		t.Fatalf("bob's edit over alice's change: exit %d, %s", code, errOut)
	}
	if n, _ := os.ReadFile(editor + ".count"); string(n) != "2\n" {
		t.Errorf("the editor ran %q times, want 2", n)
	}
	if seen, _ := os.ReadFile(editor + ".seen.2"); !strings.HasSuffix(string(seen), "\nA=1\nFROM_BOB=1\nFROM_ALICE=1\n") {
		t.Errorf("the editor's second run saw\n%s", seen)
	}
	got := bob.must(t, "--force-sync", "env", "get", "app.example.org")
	if got != "A=1\nFROM_BOB=1\nFROM_ALICE=1\n" {
		t.Fatalf("after the edit the env is\n%s", got)
	}

	// Both set different keys at the same time, many times. Each set either
	// lands or is refused with exit 4; every one that landed is there.
	landed := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, o := range []*operator{alice, bob} {
		wg.Add(1)
		go func(o *operator) {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				key := fmt.Sprintf("%s_%d", strings.ToUpper(o.name), i)
				_, errOut, code := o.run(t, "", nil, "env", "set", "app.example.org", key+"=v")
				switch code {
				case 0:
					mu.Lock()
					landed[key] = true
					mu.Unlock()
				case exitUnexpected:
				default:
					t.Errorf("%s sets %s: exit %d: %s", o.name, key, code, errOut)
				}
			}
		}(o)
	}
	wg.Wait()
	final := alice.must(t, "--force-sync", "env", "get", "app.example.org")
	for key := range landed {
		if !strings.Contains(final, key+"=v\n") {
			t.Errorf("%s was reported set but is missing:\n%s", key, final)
		}
	}
	if len(landed) == 0 {
		t.Fatal("no set landed")
	}
	for _, o := range []*operator{alice, bob} {
		o.must(t, "sync")
		if st := gitOut(t, o.dir, "status", "--porcelain"); st != "" {
			t.Errorf("%s's clone is not clean:\n%s", o.name, st)
		}
	}
	if a, b := alice.must(t, "env", "get", "app.example.org"), bob.must(t, "env", "get", "app.example.org"); a != b {
		t.Errorf("the clones disagree:\n%s\n%s", a, b)
	}
}
