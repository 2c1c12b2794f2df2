package main

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// meta runs the real meta binary (testscript put it on PATH) with --dir
// dir and returns what it printed on stdout.
func meta(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	out, _, err := metaFull(t, dir, args...)
	return out, err
}

// metaFull is meta that also returns stderr.
func metaFull(t *testing.T, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command("meta", append([]string{"--dir", dir}, args...)...)
	cmd.Env = append(os.Environ(), "META_OPERATOR=Crash <crash@example.com>")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), &exitError{err, errOut.String()}
	}
	return out.String(), errOut.String(), nil
}

type exitError struct {
	err    error
	stderr string
}

func (e *exitError) Error() string { return e.err.Error() + ": " + e.stderr }

// calibrate appends three events in dir, records them as reported, and
// returns a kill window: from process start to just past a warm append's
// end, so kills land at every stage of the work.
func calibrate(t *testing.T, dir string, reported map[string]bool) (time.Duration, *rand.Rand) {
	t.Helper()
	var window time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		id, err := meta(t, dir, "append", "deploy", "a.example.com", "--version", "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		window = time.Since(start) * 3 / 2
		reported[strings.TrimSpace(id)] = true
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d, kill window %s", seed, window)
	return window, rand.New(rand.NewSource(seed))
}

// killAtRandom starts meta with args, kills it with SIGKILL at a random
// instant of window, and returns what it printed if it finished first.
func killAtRandom(t *testing.T, rng *rand.Rand, window time.Duration, args ...string) (stdout string, finished bool) {
	t.Helper()
	cmd := exec.Command("meta", args...)
	cmd.Env = append(os.Environ(), "META_OPERATOR=Crash <crash@example.com>")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(rng.Int63n(int64(window))))
	cmd.Process.Signal(syscall.SIGKILL)
	if cmd.Wait() != nil {
		return "", false
	}
	return strings.TrimSpace(out.String()), true
}

// SIGKILL at any instant of an append loses no event that was reported
// appended (exit 0), duplicates none, and leaves a repository the next
// command continues without help.
func TestKilledAppendsLoseNothing(t *testing.T) {
	if _, err := exec.LookPath("meta"); err != nil {
		t.Fatalf("meta is not on PATH: %v", err)
	}
	dir := t.TempDir()
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	reported := map[string]bool{}
	window, rng := calibrate(t, dir, reported)
	killed := 0
	for i := 0; i < 100; i++ {
		if id, finished := killAtRandom(t, rng, window, "--dir", dir, "append", "note", "a.example.com", "-m", "crash"); finished {
			reported[id] = true
		} else {
			killed++
		}
	}
	t.Logf("%d appends reported, %d killed", len(reported), killed)

	// The next command just works, and so does everything after it.
	last, err := meta(t, dir, "append", "note", "a.example.com", "-m", "after the storm")
	if err != nil {
		t.Fatalf("append after crashes: %v", err)
	}
	reported[strings.TrimSpace(last)] = true
	seen := logIDs(t, dir)
	for id := range reported {
		if seen[id] != 1 {
			t.Errorf("event %s was reported appended but appears %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s appears %d times", id, n)
		}
	}
	headOut, err := meta(t, dir, "head", "a.example.com", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		Events int  `json:"events"`
		Forked bool `json:"forked"`
	}
	json.Unmarshal([]byte(headOut), &head)
	if head.Events != len(seen) || head.Forked {
		t.Errorf("head counts %d events (forked %v), log %d", head.Events, head.Forked, len(seen))
	}
	if _, err := meta(t, dir, "verify"); err != nil {
		t.Errorf("verify after crashes: %v", err)
	}
	for _, args := range [][]string{{"status", "--porcelain", "--untracked-files=all"}, {"fsck", "--strict", "--no-progress", "--no-dangling"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("git %s: %v\n%s", args[0], err, out)
		}
	}
	// git's history holds exactly the events the log shows.
	cmd := exec.Command("git", "rev-list", "--count", "HEAD")
	cmd.Dir = dir
	out, _ := cmd.Output()
	if got, want := strings.TrimSpace(string(out)), len(seen)+1; got != itoa(want) {
		t.Errorf("%s commits, want %d (one per event, plus init)", got, want)
	}
}

// The same under sync: one operator's appends (fetch, replay, push) and
// syncs are killed at random instants while another operator keeps
// pushing, so integrations are interrupted too. Afterwards both clones hold
// every reported event exactly once.
func TestKilledSyncsLoseNothing(t *testing.T) {
	remote := filepath.Join(t.TempDir(), "remote.git")
	gitOut(t, filepath.Dir(remote), "init", "-q", "--bare", "-b", "main", remote)
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, dir := range []string{a, b} {
		if _, err := meta(t, "", "init", dir, "--remote", remote, "--project", "coop", "--env", "prod"); err != nil {
			t.Fatal(err)
		}
	}
	reported := map[string]bool{}
	window, rng := calibrate(t, a, reported)
	// The operator's own work, in every state git knows, must survive.
	os.WriteFile(filepath.Join(a, "untracked.txt"), []byte("mine\n"), 0o644)
	os.WriteFile(filepath.Join(a, "staged.txt"), []byte("staged\n"), 0o644)
	gitOut(t, a, "add", "staged.txt")
	cfg, _ := os.ReadFile(filepath.Join(a, "meta.yaml"))
	os.WriteFile(filepath.Join(a, "meta.yaml"), append(cfg, "# my note\n"...), 0o644)
	othersA := gitOut(t, a, "status", "--porcelain")
	for i := 0; i < 60; i++ {
		// The other operator moves the remote on.
		id, err := meta(t, b, "append", "note", "a.example.com", "-m", "from b")
		if err != nil {
			t.Fatalf("b: %v", err)
		}
		reported[strings.TrimSpace(id)] = true
		if i%3 == 2 {
			killAtRandom(t, rng, window, "--dir", a, "sync")
		} else if id, finished := killAtRandom(t, rng, window, "--dir", a, "append", "note", "a.example.com", "-m", "from a"); finished {
			reported[id] = true
		}
	}
	for _, dir := range []string{a, b, a} {
		if _, err := meta(t, dir, "sync"); err != nil {
			t.Fatalf("sync after crashes: %v", err)
		}
	}
	for _, dir := range []string{a, b} {
		ids := logIDs(t, dir)
		for id := range reported {
			if ids[id] != 1 {
				t.Errorf("%s: reported event %s appears %d times", filepath.Base(dir), id, ids[id])
			}
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("%s: event %s appears %d times", filepath.Base(dir), id, n)
			}
		}
		if _, err := meta(t, dir, "--offline", "verify"); err != nil {
			t.Errorf("%s: verify: %v", filepath.Base(dir), err)
		}
		want := ""
		if dir == a {
			want = othersA
		}
		if st := gitOut(t, dir, "status", "--porcelain", "--untracked-files=all"); st != want {
			t.Errorf("%s: status\n%s\nwant\n%s", filepath.Base(dir), st, want)
		}
		gitOut(t, dir, "fsck", "--strict", "--no-progress", "--no-dangling")
		if merges := gitOut(t, dir, "rev-list", "--merges", "--count", "HEAD"); merges != "0" {
			t.Errorf("%s: %s merge commits", filepath.Base(dir), merges)
		}
	}
	if ha, hb := logIDs(t, a), logIDs(t, b); len(ha) != len(hb) {
		t.Errorf("clones hold %d and %d events", len(ha), len(hb))
	}
}

// The same while the remote is abused: a forge pushes commits that modify
// records (which every clone quarantines) and force-pushes older histories
// (whose lost events the clones put back), while one operator's syncs,
// appends and repairs are killed at random instants, in the middle of
// quarantining, restoring and repairing. Afterwards both clones hold every
// reported event exactly once, agree, and verify reports exactly the
// quarantined commits still in history.
func TestKilledQuarantineAndRestoreLoseNothing(t *testing.T) {
	remote := filepath.Join(t.TempDir(), "remote.git")
	gitOut(t, filepath.Dir(remote), "init", "-q", "--bare", remote) // a plain one
	a, b, forge := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "forge")
	for _, dir := range []string{a, b} {
		if _, err := meta(t, "", "init", dir, "--remote", remote, "--project", "coop", "--env", "prod"); err != nil {
			t.Fatal(err)
		}
	}
	reported := map[string]bool{}
	window, rng := calibrate(t, a, reported)
	gitOut(t, filepath.Dir(forge), "clone", "-q", "-b", "main", remote, forge)
	tampered := 0
	for i := 0; i < 45; i++ {
		id, err := meta(t, b, "append", "note", "a.example.com", "-m", "from b")
		if err != nil {
			t.Fatalf("b: %v", err)
		}
		reported[strings.TrimSpace(id)] = true
		switch i % 5 {
		case 1: // the forge edits a record in place
			gitOut(t, forge, "pull", "-q", "--ff-only", "origin", "main")
			recs := strings.Fields(gitOut(t, forge, "ls-files", "projects"))
			f := filepath.Join(forge, recs[rng.Intn(len(recs))])
			data, _ := os.ReadFile(f)
			os.WriteFile(f, append(data, byte(i)), 0o644)
			gitOut(t, forge, "commit", "-qam", "tamper "+itoa(i))
			if _, err := exec.Command("git", "-C", forge, "push", "-q", "origin", "main").CombinedOutput(); err == nil {
				tampered++
			}
		case 3: // and force-pushes an older history
			gitOut(t, forge, "fetch", "-q", "origin")
			gitOut(t, forge, "push", "-q", "--force", "origin", "origin/main~2:refs/heads/main")
		}
		switch i % 3 {
		case 0:
			killAtRandom(t, rng, window, "--dir", a, "sync")
		case 1:
			killAtRandom(t, rng, window, "--dir", a, "repair")
		default:
			if id, finished := killAtRandom(t, rng, window, "--dir", a, "append", "note", "a.example.com", "-m", "from a"); finished {
				reported[id] = true
			}
		}
	}
	t.Logf("%d events reported, %d tampering commits pushed", len(reported), tampered)
	for _, dir := range []string{a, b, a, b} {
		if _, err := meta(t, dir, "sync"); err != nil {
			t.Fatalf("sync after crashes: %v", err)
		}
	}
	var quarantined []string
	for _, dir := range []string{a, b} {
		ids := logIDs(t, dir)
		for id := range reported {
			if ids[id] != 1 {
				t.Errorf("%s: reported event %s appears %d times", filepath.Base(dir), id, ids[id])
			}
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("%s: event %s appears %d times", filepath.Base(dir), id, n)
			}
		}
		// verify names exactly the commits in history that tamper.
		out, _ := meta(t, dir, "--offline", "quarantine", "ls", "--all", "--json")
		var qs []struct {
			Commit  string `json:"commit"`
			Subject string `json:"subject"`
		}
		if err := json.Unmarshal([]byte(out), &qs); err != nil {
			t.Fatalf("%s: quarantine ls: %v: %s", filepath.Base(dir), err, out)
		}
		var got []string
		for _, q := range qs {
			if !strings.HasPrefix(q.Subject, "tamper ") {
				t.Errorf("%s: quarantined %s (%q)", filepath.Base(dir), q.Commit, q.Subject)
			}
			got = append(got, q.Commit)
		}
		inHistory := strings.Fields(gitOut(t, dir, "log", "--format=%H", "--grep=^tamper ", "HEAD"))
		if strings.Join(got, " ") != strings.Join(reverse(inHistory), " ") {
			t.Errorf("%s: quarantined %v, history's tampering commits %v", filepath.Base(dir), got, inHistory)
		}
		if quarantined == nil {
			quarantined = got
		} else if strings.Join(quarantined, " ") != strings.Join(got, " ") {
			t.Errorf("clones quarantine %v and %v", quarantined, got)
		}
		vout, _ := meta(t, dir, "--offline", "verify", "--json")
		var v struct {
			Findings []struct {
				Commit  string `json:"commit"`
				Problem string `json:"problem"`
			} `json:"findings"`
		}
		json.Unmarshal([]byte(vout), &v)
		for _, f := range v.Findings {
			if !slices.Contains(got, f.Commit) || f.Problem != "record modified" {
				t.Errorf("%s: verify finds %+v", filepath.Base(dir), f)
			}
		}
		if st := gitOut(t, dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
			t.Errorf("%s: status\n%s", filepath.Base(dir), st)
		}
		gitOut(t, dir, "fsck", "--strict", "--no-progress", "--no-dangling")
	}
	if ta, tb := gitOut(t, a, "rev-parse", "HEAD"), gitOut(t, b, "rev-parse", "HEAD"); ta != tb {
		t.Errorf("clones end at %s and %s", ta, tb)
	}
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[len(s)-1-i] = x
	}
	return out
}

// A join killed at any instant leaves the directory as it was (absent)
// or a whole log, never a half-made clone: the next `meta init --remote`
// of the same directory works, with nothing else to do first. Joins of an
// empty remote are killed too, where the join starts the log and pushes.
func TestKilledJoinsLeaveNothingHalfDone(t *testing.T) {
	root := t.TempDir()
	remote := filepath.Join(root, "remote.git")
	gitOut(t, root, "init", "-q", "--bare", remote) // a plain one
	a := filepath.Join(root, "a")
	if _, err := meta(t, "", "init", a, "--remote", remote, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	reported := map[string]bool{}
	_, rng := calibrate(t, a, reported)
	for i := 0; i < 20; i++ {
		if _, err := meta(t, a, "append", "note", "app"+itoa(i%4)+".example.com", "-m", "n"); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := meta(t, "", "init", filepath.Join(root, "timed"), "--remote", remote); err != nil {
		t.Fatal(err)
	}
	window := time.Since(start) * 3 / 2
	for i := 0; i < 30; i++ {
		dir := filepath.Join(root, "j"+itoa(i))
		url := remote
		if i%5 == 4 { // an empty remote: the join starts the log
			url = filepath.Join(root, "empty"+itoa(i)+".git")
			gitOut(t, root, "init", "-q", "--bare", url)
		}
		killAtRandom(t, rng, window, "init", dir, "--remote", url)
		if _, err := os.Stat(dir); err == nil {
			// Whole or nothing: what is there is a log every command reads.
			if _, err := meta(t, dir, "--offline", "ls"); err != nil {
				t.Fatalf("join %d killed: left %s that is no log: %v", i, dir, err)
			}
			continue
		}
		if _, err := meta(t, "", "init", dir, "--remote", url); err != nil {
			t.Fatalf("join %d again after a kill: %v", i, err)
		}
		if _, err := meta(t, dir, "ls"); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		if _, err := os.Stat(filepath.Join(root, ".j"+itoa(i)+".meta-join")); err == nil {
			t.Errorf("join %d: what the killed join left is still there", i)
		}
	}
}
