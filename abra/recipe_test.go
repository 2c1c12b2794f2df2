package abra

import (
	"context"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	valid := []struct {
		s    string
		want Version
	}{
		{"4.0.0+v1.93.0", Version{Major: 4, Upstream: "v1.93.0"}},
		{"5.0.3+27.0.1-fpm", Version{Major: 5, Patch: 3, Upstream: "27.0.1-fpm"}},
		{"2.0.1+1.0.6-social-amd64", Version{Major: 2, Patch: 1, Upstream: "1.0.6-social-amd64"}},
		{"5.1.0+29.0.4", Version{Major: 5, Minor: 1, Upstream: "29.0.4"}},
		{"1.2.0", Version{Major: 1, Minor: 2}},
		{"0.0.0", Version{}},
		{"1.0.0-rc.1+2.3", Version{Major: 1, Pre: "rc.1", Upstream: "2.3"}},
		{"1.0.0-0.3.7", Version{Major: 1, Pre: "0.3.7"}},
		{"1.0.0-x-y-z.--", Version{Major: 1, Pre: "x-y-z.--"}},
		{"1.2.3+1.27.2_alpine", Version{Major: 1, Minor: 2, Patch: 3, Upstream: "1.27.2_alpine"}},
		{"10.20.30+0", Version{Major: 10, Minor: 20, Patch: 30, Upstream: "0"}},
	}
	for _, tt := range valid {
		got, err := ParseVersion(tt.s)
		if err != nil {
			t.Errorf("%q: %v", tt.s, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.s, got, tt.want)
		}
		if got.String() != tt.s {
			t.Errorf("%q: String() = %q", tt.s, got.String())
		}
	}

	invalid := []struct{ s, why string }{
		{"", "empty"},
		{"1.2", "not MAJOR.MINOR.PATCH"},
		{"1.2.3.4", "not MAJOR.MINOR.PATCH"},
		{"01.2.3", "leading zero"},
		{"1.02.3", "leading zero"},
		{"1.2.03+1", "leading zero"},
		{"1.2.3+", `nothing after "+"`},
		{"1.2.3+a+b", "upstream"},
		{"1.2.3-", "empty identifier"},
		{"1.2.3-rc..1", "empty identifier"},
		{"1.2.3-01", "leading zero"},
		{"1.2.3-rc_1", "not a letter, digit or '-'"},
		{"v1.2.0", `leading "v"`},
		{"V1.2.0", `leading "v"`},
		{" 1.2.3", "not a number"},
		{"1.2.3 ", "not a number"},
		{"1.2.3+1 ", "upstream"},
		{"1.2.3\n", "not a number"},
		{"1.2.3+x\x1b[2J", "upstream"},
		{"1.2.3+x\x00", "upstream"},
		{"1.2.3+ü", "upstream"},
		{"1.2.-3", "empty"},
		{"+1.2.3", "not MAJOR.MINOR.PATCH"},
		{"1..3", "minor is empty"},
		{"a.b.c", "not a number"},
		{"99999999999999999999.0.0", "too large"},
		{"1.9223372036854775808.0", "too large"},
		{"latest", "not MAJOR.MINOR.PATCH"},
		{"eb96de94+U", "not MAJOR.MINOR.PATCH"},
		{"1.2.3+" + strings.Repeat("a", 200), "longer than"},
	}
	for _, tt := range invalid {
		_, err := ParseVersion(tt.s)
		if !errors.Is(err, ErrVersion) {
			t.Errorf("%q: err = %v, want ErrVersion", tt.s, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%q: %v, want it to say %q", tt.s, err, tt.why)
		}
		// The error names the input, quoted so that a control character in it
		// reaches no terminal.
		if quoted := (`"` + strings.ToValidUTF8(tt.s, "")); len(tt.s) < 40 && strings.IndexFunc(tt.s, func(r rune) bool { return r < ' ' || r > '~' }) < 0 && !strings.Contains(err.Error(), quoted) {
			t.Errorf("%q: %v does not name the input", tt.s, err)
		}
		if strings.ContainsAny(err.Error(), "\x00\x1b\n") {
			t.Errorf("%q: error carries a control character: %q", tt.s, err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "2.0.0", -1},
		{"2.0.0", "2.1.0", -1},
		{"2.1.0", "2.1.1", -1},
		{"1.10.0", "1.9.0", 1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
		{"1.0.0-alpha.beta", "1.0.0-beta", -1},
		{"1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"1.0.0-beta.11", "1.0.0-rc.1", -1},
		{"1.0.0-rc.99999999999999999999", "1.0.0-rc.100000000000000000000", -1},
		{"1.0.0-rc.1+9", "1.0.0+1", -1},
		// semver decides before upstream, whatever the upstream says
		{"4.0.0+v1.93.0", "4.0.1+v1.0.0", -1},
		// equal semver: upstream as a string, a bare semver first
		{"1.2.0", "1.2.0+1", -1},
		{"1.2.0+1.10", "1.2.0+1.9", -1},
		{"1.2.0+a", "1.2.0+b", -1},
		{"4.0.0+v1.93.0", "4.0.0+v1.93.0", 0},
	}
	for _, tt := range tests {
		got, err := CompareVersions(tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
		}
		if back, _ := CompareVersions(tt.b, tt.a); back != -tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, back, -tt.want)
		}
	}
	for _, pair := range [][2]string{{"1.2", "1.2.0"}, {"1.2.0", "v1.2.0"}} {
		if _, err := CompareVersions(pair[0], pair[1]); !errors.Is(err, ErrVersion) {
			t.Errorf("CompareVersions(%q, %q): err = %v", pair[0], pair[1], err)
		}
	}
}

// Whatever order the versions come in, sorting gives the one order, and only
// a version compares equal to itself.
func TestVersionOrderIsTotal(t *testing.T) {
	sorted := []string{
		"0.1.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0-rc.1+2", "1.0.0", "1.0.0+1", "1.0.0+1.0", "1.0.0+v1",
		"1.2.0+1.9", "1.9.0", "1.10.0+0", "2.0.0+1.0.6-social-amd64", "10.0.0",
	}
	vs := make([]Version, len(sorted))
	for i, s := range sorted {
		v, err := ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			if got, want := vs[i].Compare(vs[j]), cmpInt(i, j); got != want {
				t.Errorf("%s vs %s = %d, want %d", sorted[i], sorted[j], got, want)
			}
		}
	}
	r := rand.New(rand.NewSource(1))
	for range 20 {
		shuffled := slices.Clone(vs)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		slices.SortFunc(shuffled, Version.Compare)
		if !slices.Equal(shuffled, vs) {
			t.Fatalf("sorted to %v", shuffled)
		}
	}
}

func TestIsChaosVersion(t *testing.T) {
	for s, want := range map[string]bool{
		"eb96de94": true, "eb96de94+U": true, "eb96de9": true, strings.Repeat("a", 40): true,
		"4.0.0+v1.93.0": false, "1.2.0": false, "eb96de94+X": false, "EB96DE94": false, "eb96d": false,
		"": false, "+U": false, "eb96de94+U+U": false, "zzzzzzzz": false,
	} {
		if got := IsChaosVersion(s); got != want {
			t.Errorf("IsChaosVersion(%q) = %v", s, got)
		}
	}
}

// What UpgradeCommand and RollbackCommand give is, by abra's grammar as
// ParseCommand reads it, that command of that app at that version, with no
// word meta would redact.
func TestUpgradeAndRollbackCommands(t *testing.T) {
	tests := []struct {
		domain, version string
		want            string
	}{
		{"matrix.example.com", "4.0.0+v1.93.0", "abra app upgrade --no-input matrix.example.com 4.0.0+v1.93.0"},
		{"matrix.example.com", "", "abra app upgrade --no-input matrix.example.com"},
		{"-n.example.com", "1.0.0", "abra app upgrade --no-input -- -n.example.com 1.0.0"},
		{"x.example.com", "--chaos", "abra app upgrade --no-input -- x.example.com --chaos"},
	}
	for _, tt := range tests {
		if got := strings.Join(UpgradeCommand(tt.domain, tt.version), " "); got != tt.want {
			t.Errorf("UpgradeCommand(%q, %q) = %q, want %q", tt.domain, tt.version, got, tt.want)
		}
		if got, want := strings.Join(RollbackCommand(tt.domain, tt.version), " "), strings.Replace(tt.want, "upgrade", "rollback", 1); got != want {
			t.Errorf("RollbackCommand(%q, %q) = %q, want %q", tt.domain, tt.version, got, want)
		}
		for action, argv := range map[Action][]string{Upgrade: UpgradeCommand(tt.domain, tt.version), Rollback: RollbackCommand(tt.domain, tt.version)} {
			c, err := ParseCommand(argv)
			if err != nil {
				t.Fatalf("%q: %v", argv, err)
			}
			if c.Action != action || c.Domain != tt.domain || c.VersionArg() != tt.version || len(c.Args) > 1 || c.Chaos || !c.StateChanging() {
				t.Errorf("%q parses as %+v", argv, c)
			}
			if red, _ := Redact(argv); !slices.Equal(red, argv) {
				t.Errorf("%q: Redact gives %q", argv, red)
			}
			if l := parse(argv); !slices.ContainsFunc(l.flags, func(f flagSet) bool { return f.long == "no-input" && f.value == "true" }) {
				t.Errorf("%q: no --no-input as abra reads it", argv)
			}
		}
	}
}

// gitRun runs git in dir for a test's fixtures, with fixed names and the
// given date for the author, committer and tagger.
func gitRun(t *testing.T, dir, date string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "advice.nestedTag=false", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date, "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

const (
	day1 = "2024-01-01T10:00:00Z"
	day2 = "2024-02-01T10:00:00Z"
	day3 = "2024-03-01T10:00:00Z"
	day4 = "2024-04-01T10:00:00Z"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// recipeRepo makes a recipe's checkout with releases tagged every way git
// can, and tags that are no release.
func recipeRepo(t *testing.T) (dir string, want []Tag, wantSkipped map[string]string) {
	dir = t.TempDir()
	gitRun(t, dir, day1, "init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "compose.yml"), []byte("version: '3.8'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, dir, day1, "add", ".")
	gitRun(t, dir, day1, "commit", "-q", "-m", "first")
	c1 := gitRun(t, dir, day1, "rev-parse", "HEAD")
	gitRun(t, dir, day1, "tag", "1.0.0+1.25.0")                        // lightweight: the commit's date
	gitRun(t, dir, day2, "tag", "-a", "-m", "release", "1.0.1+1.25.1") // annotated: the tagger's date
	gitRun(t, dir, day1, "commit", "-q", "--allow-empty", "-m", "second")
	c2 := gitRun(t, dir, day1, "rev-parse", "HEAD")
	gitRun(t, dir, day3, "tag", "-a", "-m", "release", "1.10.0+1.27.0")
	gitRun(t, dir, day3, "tag", "-a", "-m", "rc", "1.10.0-rc.1+1.27.0", c1)
	gitRun(t, dir, day3, "tag", "1.9.0", c2)
	// No releases: names that are not versions, and objects that are no commit.
	gitRun(t, dir, day4, "tag", "latest")
	gitRun(t, dir, day4, "tag", "v1.2.0")
	gitRun(t, dir, day4, "tag", `it's-"odd"-é{x}`)
	gitRun(t, dir, day4, "tag", "-a", "-m", "tree", "2.0.0+tree", "HEAD^{tree}")
	blob := gitRun(t, dir, day4, "hash-object", "-w", "compose.yml")
	gitRun(t, dir, day4, "tag", "2.0.0+blob", blob)
	gitRun(t, dir, day4, "tag", "-a", "-m", "nested", "2.0.0+nested", "1.0.1+1.25.1")
	want = []Tag{
		{Version: "1.0.0+1.25.0", Commit: c1, Tagged: at(day1)},
		{Version: "1.0.1+1.25.1", Commit: c1, Tagged: at(day2)},
		{Version: "1.9.0", Commit: c2, Tagged: at(day1)},
		{Version: "1.10.0-rc.1+1.27.0", Commit: c1, Tagged: at(day3)},
		{Version: "1.10.0+1.27.0", Commit: c2, Tagged: at(day3)},
	}
	wantSkipped = map[string]string{
		"latest": "not a recipe version", "v1.2.0": `leading "v"`, `it's-"odd"-é{x}`: "not a recipe version",
		"2.0.0+tree": "tag of a tree", "2.0.0+blob": "tag of a blob", "2.0.0+nested": "tag of a tag",
	}
	return dir, want, wantSkipped
}

func TestRecipeTags(t *testing.T) {
	dir, want, wantSkipped := recipeRepo(t)
	got, skipped, err := RecipeTags(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tags:\n got %+v\nwant %+v", got, want)
	}
	if len(skipped) != len(wantSkipped) {
		t.Errorf("skipped %+v, want %v", skipped, wantSkipped)
	}
	for _, s := range skipped {
		if why, ok := wantSkipped[s.Name]; !ok || !strings.Contains(s.Reason, why) {
			t.Errorf("skipped %q because %q, want %q", s.Name, s.Reason, why)
		}
	}
}

// git's variables in meta's environment (a git hook running meta has
// GIT_DIR set) do not make RecipeTags read another repository.
func TestRecipeTagsIgnoresGitEnvironment(t *testing.T) {
	dir, want, _ := recipeRepo(t)
	other := t.TempDir()
	gitRun(t, other, day1, "init", "-q")
	gitRun(t, other, day1, "commit", "-q", "--allow-empty", "-m", "other")
	gitRun(t, other, day1, "tag", "9.9.9")
	t.Setenv("GIT_DIR", filepath.Join(other, ".git"))
	t.Setenv("GIT_WORK_TREE", other)
	t.Setenv("GIT_OBJECT_DIRECTORY", filepath.Join(other, ".git", "objects"))
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "core.bare")
	t.Setenv("GIT_CONFIG_VALUE_0", "true")
	got, _, err := RecipeTags(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with GIT_DIR elsewhere:\n got %+v\nwant %+v", got, want)
	}
	// and a dir that is no checkout is one even with GIT_DIR set
	if _, _, err := RecipeTags(context.Background(), t.TempDir()); !errors.Is(err, ErrNotRepo) {
		t.Errorf("plain dir with GIT_DIR set: %v", err)
	}
}

func TestRecipeTagsEmptyRepository(t *testing.T) {
	dir := t.TempDir()
	gitRun(t, dir, day1, "init", "-q")
	got, skipped, err := RecipeTags(context.Background(), dir)
	if err != nil || len(got) != 0 || len(skipped) != 0 {
		t.Fatalf("empty repository: %v %v %v", got, skipped, err)
	}
}

func TestRecipeTagsErrors(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory inside a checkout is no recipe: git must not climb out of it.
	repo, _, _ := recipeRepo(t)
	inside := filepath.Join(repo, "sub")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	// A checkout with a tag that points at no object: git itself fails.
	broken, _, _ := recipeRepo(t)
	if err := os.WriteFile(filepath.Join(broken, ".git", "refs", "tags", "3.0.0"), []byte(strings.Repeat("1", 40)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir string
		is        error
		says      string
	}{
		{"missing", filepath.Join(base, "nope"), fs.ErrNotExist, ""},
		{"a file", file, ErrNotRepo, "not a directory"},
		{"plain dir", base, ErrNotRepo, ""},
		{"inside a checkout", inside, ErrNotRepo, ""},
		{"broken ref", broken, nil, "missing object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tags, _, err := RecipeTags(context.Background(), tt.dir)
			if err == nil {
				t.Fatalf("no error, tags %v", tags)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.dir) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v, want it to name %s and say %q", err, tt.dir, tt.says)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := RecipeTags(ctx, repo); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
