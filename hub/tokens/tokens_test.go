package tokens

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var now = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func tokensPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "meta", "tokens.json")
}

// A token is meta_ and 52 base32 characters, new each time; the file keeps
// its hash, never the token, and is readable by its owner only.
func TestCreateShowsTheTokenOnceAndKeepsItsHash(t *testing.T) {
	path := tokensPath(t)
	a, err := Create(path, "ci", now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(path, "dashboard", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	format := regexp.MustCompile(`^meta_[a-z2-7]{52}$`)
	if !format.MatchString(a) || !format.MatchString(b) || a == b {
		t.Fatalf("tokens %q, %q: want two different meta_[a-z2-7]{52}", a, b)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{a, b, strings.TrimPrefix(a, Prefix)[:20]} {
		if strings.Contains(string(data), tok) {
			t.Fatalf("tokens file holds the token %q:\n%s", tok, data)
		}
	}
	if !strings.Contains(string(data), hash(a)) {
		t.Fatalf("tokens file lacks the hash of the token:\n%s", data)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file mode %v, want 0600", fi.Mode().Perm())
	}
	infos, err := List(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "ci" || !infos[0].Created.Equal(now) || infos[0].LastUsed != nil || infos[1].Name != "dashboard" {
		t.Fatalf("list: %+v", infos)
	}
}

func TestNamesDuplicatesAndUnknownNames(t *testing.T) {
	path := tokensPath(t)
	for _, name := range []string{"", "CI", "a b", "a/b", "../x", strings.Repeat("a", 65), "é", "a\x1b[31m"} {
		if _, err := Create(path, name, now); !errors.Is(err, ErrName) {
			t.Errorf("create %q: %v, want ErrName", name, err)
		}
	}
	for _, name := range []string{"a", "ci-runner_2.eu", strings.Repeat("a", 64)} {
		if _, err := Create(path, name, now); err != nil {
			t.Errorf("create %q: %v", name, err)
		}
	}
	if _, err := Create(path, "a", now); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "meta token rm a") {
		t.Errorf("create a twice: %v, want ErrExists naming the way out", err)
	}
	if err := Remove(path, "nobody"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nobody"`) {
		t.Errorf("rm nobody: %v, want ErrNotFound naming it", err)
	}
	if infos, _ := List(path); len(infos) != 3 {
		t.Errorf("after refusals: %+v, want the 3 made", infos)
	}
}

// Two creates at once both count: the file is rewritten under a lock.
func TestConcurrentCreatesAllCount(t *testing.T) {
	path := tokensPath(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Create(path, fmt.Sprintf("t%d", i), now); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if infos, err := List(path); err != nil || len(infos) != 20 {
		t.Fatalf("%d tokens (%v), want 20", len(infos), err)
	}
}

// The checker accepts the tokens the file holds now: one made or removed
// by another process counts from the next check on, even when the new
// file has the same size and mtime as the old.
func TestCheckerFollowsTheFile(t *testing.T) {
	path := tokensPath(t)
	c, err := NewChecker(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check("anything"); !errors.Is(err, ErrNone) {
		t.Fatalf("no file: %v, want ErrNone", err)
	}
	ci, _ := Create(path, "ci", now)
	if name, err := c.Check(ci); err != nil || name != "ci" {
		t.Fatalf("right token: %q, %v", name, err)
	}
	for _, wrong := range []string{"", Prefix, ci[:len(ci)-1], ci + "a", ci[:len(ci)-1] + "b", strings.ToUpper(ci), "Bearer " + ci, hash(ci)} {
		if wrong == ci {
			continue
		}
		if _, err := c.Check(wrong); !errors.Is(err, ErrNotFound) {
			t.Errorf("check %q: %v, want ErrNotFound", wrong, err)
		}
	}
	other, _ := Create(path, "other", now)
	if err := Remove(path, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(ci); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed token: %v, want ErrNotFound", err)
	}
	if name, err := c.Check(other); err != nil || name != "other" {
		t.Fatalf("remaining token: %q, %v", name, err)
	}
	// Same name, same size, same mtime: only the inode tells.
	fi, _ := os.Stat(path)
	if err := Remove(path, "other"); err != nil {
		t.Fatal(err)
	}
	again, _ := Create(path, "other", now)
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	if fi2, _ := os.Stat(path); fi2.Size() != fi.Size() || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("test setup: size %d→%d", fi.Size(), fi2.Size())
	}
	if _, err := c.Check(other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replaced token: %v, want ErrNotFound", err)
	}
	if _, err := c.Check(again); err != nil {
		t.Fatalf("its replacement: %v", err)
	}
	if err := Remove(path, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(again); !errors.Is(err, ErrNone) {
		t.Fatalf("last token removed: %v, want ErrNone", err)
	}
}

// A tokens file that is not one refuses every token (fail closed), and
// reads again once mended.
func TestCheckerRefusesABrokenFile(t *testing.T) {
	path := tokensPath(t)
	tok, _ := Create(path, "ci", now)
	good, _ := os.ReadFile(path)
	c, err := NewChecker(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"truncated":    string(good[:len(good)/2]),
		"empty":        "",
		"newer format": `{"version": 2, "tokens": []}`,
		"bad hash":     `{"version": 1, "tokens": [{"name": "ci", "sha256": "zz"}]}`,
		"bad name":     `{"version": 1, "tokens": [{"name": "C I", "sha256": "` + hash(tok) + `"}]}`,
	} {
		os.WriteFile(path, []byte(data), 0o600)
		if _, err := c.Check(tok); !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want ErrFile naming %s", name, err, path)
		}
		if _, err := NewChecker(path); !errors.Is(err, ErrFile) {
			t.Errorf("%s: NewChecker %v, want ErrFile", name, err)
		}
		if _, err := Create(path, "x", now); !errors.Is(err, ErrFile) {
			t.Errorf("%s: Create over it: %v, want ErrFile", name, err)
		}
	}
	os.WriteFile(path, good, 0o600)
	if _, err := c.Check(tok); err != nil {
		t.Fatalf("mended: %v", err)
	}
}

// Every hash is compared, whichever matched, so a check's time does not
// say which token matched; the comparison itself is crypto/subtle's.
func TestCheckComparesEveryHashInConstantTime(t *testing.T) {
	path := tokensPath(t)
	var toks []string
	for i := range 5 {
		tok, _ := Create(path, fmt.Sprintf("t%d", i), now)
		toks = append(toks, tok)
	}
	c, _ := NewChecker(path)
	orig := equal
	defer func() { equal = orig }()
	calls := 0
	equal = func(a, b []byte) bool { calls++; return orig(a, b) }
	for _, tok := range []string{toks[0], toks[4], Prefix + strings.Repeat("a", 52)} {
		calls = 0
		c.Check(tok)
		if calls != 5 {
			t.Errorf("check of %s…: %d comparisons, want all 5", tok[:9], calls)
		}
	}
	// The source compares hashes with subtle.ConstantTimeCompare and with
	// nothing that stops at the first differing byte.
	f, err := parser.ParseFile(token.NewFileSet(), "tokens.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var subtle bool
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				switch id.Name + "." + sel.Sel.Name {
				case "subtle.ConstantTimeCompare":
					subtle = true
				case "bytes.Equal", "bytes.Compare", "slices.Equal":
					t.Errorf("tokens.go uses %s.%s", id.Name, sel.Sel.Name)
				}
			}
		}
		return true
	})
	if !subtle {
		t.Error("tokens.go does not use subtle.ConstantTimeCompare")
	}
}

// When each token was last accepted is written down at most once a minute
// per token, and List shows it; a removed token's is forgotten.
func TestLastUsed(t *testing.T) {
	path := tokensPath(t)
	ci, _ := Create(path, "ci", now)
	c, _ := NewChecker(path)
	clock := now.Add(time.Hour)
	c.now = func() time.Time { return clock }
	used := func() *time.Time {
		infos, err := List(path)
		if err != nil || len(infos) == 0 {
			t.Fatalf("list: %v %v", infos, err)
		}
		return infos[0].LastUsed
	}
	if used() != nil {
		t.Fatal("never used, but last used is set")
	}
	c.Check(ci)
	if u := used(); u == nil || !u.Equal(clock) {
		t.Fatalf("last used %v, want %v", u, clock)
	}
	first := clock
	clock = clock.Add(30 * time.Second)
	c.Check(ci)
	if u := used(); !u.Equal(first) {
		t.Fatalf("rewritten within the minute: %v", u)
	}
	clock = clock.Add(time.Minute)
	c.Check(ci)
	if u := used(); !u.Equal(clock) {
		t.Fatalf("last used %v, want %v", u, clock)
	}
	Remove(path, "ci")
	Create(path, "ci", now)
	if u := used(); u != nil {
		t.Fatalf("a new token under an old name shows the old one's use: %v", u)
	}
}

// How much a check costs, with the stat that notices a changed file, next
// to reading and parsing the file on every check instead.
func BenchmarkCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "tokens.json")
	var tok string
	for i := range 10 {
		tok, _ = Create(path, fmt.Sprintf("t%d", i), now)
	}
	// Written long ago: a stat is proof enough that it did not change.
	os.Chtimes(path, now, now)
	c, _ := NewChecker(path)
	c.now = func() time.Time { return now } // one write of the used file
	b.Run("stat", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Check(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reread", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := read(path); err != nil {
				b.Fatal(err)
			}
		}
	})
}
