package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// gitOut runs git in dir and returns its trimmed output.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// logIDs lists the event ids `meta log --json` shows in dir.
func logIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	out, err := meta(t, dir, "--offline", "log", "--json")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		ids[ev.ID]++
	}
	return ids
}

// Eight operators, each with a clone and a meta process of their own,
// append 25 events each to one remote at the same time. Every event ends
// up in every clone exactly once, history is linear, and every clone shows
// the same heads.
func TestConcurrentOperators(t *testing.T) {
	const writers, each = 8, 25
	remote := filepath.Join(t.TempDir(), "remote.git")
	gitOut(t, filepath.Dir(remote), "init", "-q", "--bare", "-b", "main", remote)
	clones := make([]string, writers)
	for i := range clones {
		clones[i] = filepath.Join(t.TempDir(), fmt.Sprintf("op%d", i))
		if _, err := meta(t, "", "init", clones[i], "--remote", remote, "--project", "coop", "--env", "prod"); err != nil {
			t.Fatal(err)
		}
	}
	reported := make([][]string, writers)
	var wg sync.WaitGroup
	for w := range clones {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				app := fmt.Sprintf("app%d.example.com", i%2)
				id, err := meta(t, clones[w], "append", "note", app, "-m", fmt.Sprintf("op%d #%d", w, i))
				if err != nil {
					t.Errorf("op%d append %d: %v", w, i, err)
					return
				}
				reported[w] = append(reported[w], strings.TrimSpace(id))
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Whatever a busy remote left unpushed goes now; a second round brings
	// every clone everything.
	for round := 0; round < 2; round++ {
		for _, c := range clones {
			if _, err := meta(t, c, "sync"); err != nil {
				t.Fatal(err)
			}
		}
	}
	var heads []string
	for _, c := range clones {
		ids := logIDs(t, c)
		for w := range reported {
			for _, id := range reported[w] {
				if ids[id] != 1 {
					t.Errorf("%s: event %s of op%d appears %d times", filepath.Base(c), id, w, ids[id])
				}
			}
		}
		if len(ids) != writers*each {
			t.Errorf("%s holds %d events, want %d", filepath.Base(c), len(ids), writers*each)
		}
		if merges := gitOut(t, c, "rev-list", "--merges", "--count", "HEAD"); merges != "0" {
			t.Errorf("%s: %s merge commits", filepath.Base(c), merges)
		}
		gitOut(t, c, "fsck", "--strict", "--no-progress", "--no-dangling")
		if st := gitOut(t, c, "status", "--porcelain", "--untracked-files=all"); st != "" {
			t.Errorf("%s: status\n%s", filepath.Base(c), st)
		}
		var both []string
		for _, app := range []string{"app0.example.com", "app1.example.com"} {
			h, err := meta(t, c, "--offline", "head", app, "--json")
			if err != nil {
				t.Fatal(err)
			}
			both = append(both, h)
		}
		heads = append(heads, strings.Join(both, ""))
	}
	for i := range heads {
		if heads[i] != heads[0] {
			t.Fatalf("%s and %s disagree:\n%s\n%s", filepath.Base(clones[0]), filepath.Base(clones[i]), heads[0], heads[i])
		}
	}
	if n := gitOut(t, remote, "rev-list", "--count", "main"); n != fmt.Sprint(writers*each+1) {
		t.Errorf("remote has %s commits, want %d", n, writers*each+1)
	}
}
