package envs_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

// The world as meta sees it: the real meta-seal binary, real age keys, real
// git repositories. Nothing of envs is faked.

var (
	ctx = context.Background()
	// helper is the real meta-seal, built once for the run.
	helper sealed.Helper
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// git as the store runs it must not read the machine's configuration.
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	os.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	bin, err := os.MkdirTemp("", "meta-seal-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bin)
	helper = sealed.Helper{Path: filepath.Join(bin, sealed.HelperName)}
	build := exec.Command("go", "build", "-o", helper.Path, "../cmd/meta-seal")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build meta-seal: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

const app = "app.example.org"

// appEnv is abra's env file for app: comments, a blank line, a value with
// a comment of its own.
const appEnv = `## Domain
DOMAIN=app.example.org
SMTP_PASSWORD=PLANT-import-7f3a9c

SECRET_KEY_BASE_VERSION=v1 # length=128
#COMMENTED=out
`

// appRoundTrip is appEnv as it comes back: the blank line is gone, as sops
// cannot hold it; everything else is there in order.
const appRoundTrip = `## Domain
DOMAIN=app.example.org
SMTP_PASSWORD=PLANT-import-7f3a9c
SECRET_KEY_BASE_VERSION=v1 # length=128
#COMMENTED=out
`

// operator is a person with an age key of their own, made in-process.
type operator struct {
	name string
	id   *age.X25519Identity
}

func newOperator(t testing.TB, name string) operator {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return operator{name: name, id: id}
}

func (o operator) recipient() string { return o.id.Recipient().String() }

func (o operator) identity() sealed.Identity {
	return sealed.Identity{Source: o.name + "'s test key", Text: o.id.String() + "\n"}
}

func (o operator) config() config.Operator { return config.Operator{Name: o.name, Age: o.recipient()} }

// as is o's view of the log at s, as cmd/meta builds it.
func as(s *store.Store, o operator) *envs.Envs {
	return &envs.Envs{
		Store:    s,
		Helper:   helper,
		Identity: func() (sealed.Identity, error) { return o.identity(), nil },
		Actor:    &metav1.Actor{Name: o.name, Email: o.name + "@example.com"},
		Now:      time.Now,
	}
}

// newLog starts a log (defaults coop/prod) with ops as its operators.
func newLog(t testing.TB, ops ...operator) *store.Store {
	t.Helper()
	s, err := store.Init(filepath.Join(t.TempDir(), "log"), store.InitOptions{Project: "coop", Env: "prod", Operator: store.Signature{Name: "Alice", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, o := range ops {
		if _, err := as(s, o).AddOperator(ctx, o.config(), envs.Note{}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// reopen opens the log at s afresh, as every meta command does.
func reopen(t testing.TB, s *store.Store) *store.Store {
	t.Helper()
	fresh, err := store.Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	return fresh
}

// appendDeploy gives domain an event and no env file.
func appendDeploy(t testing.TB, s *store.Store, domain string) {
	t.Helper()
	ev := &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1.0.0", Address: &metav1.Address{App: domain}}
	if _, err := s.Append(ctx, ev, &metav1.Actor{Name: "alice"}, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// importApp imports text as domain's env, at addr's project and env when
// given, as o.
func importApp(t testing.TB, s *store.Store, o operator, addr *metav1.Address, text string) *envs.Result {
	t.Helper()
	res, err := as(s, o).Import(ctx, addr, parse(t, text), envs.Note{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func parse(t testing.TB, text string) dotenv.File {
	t.Helper()
	f, err := dotenv.Parse("test", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=git", "GIT_AUTHOR_EMAIL=git@example.com", "GIT_COMMITTER_NAME=git", "GIT_COMMITTER_EMAIL=git@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func headOf(t testing.TB, s *store.Store) string { return git(t, s.Root(), "rev-parse", "HEAD") }

// headFiles are the files the last commit changed, sorted.
func headFiles(t testing.TB, s *store.Store) []string {
	t.Helper()
	out := strings.Fields(git(t, s.Root(), "diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD"))
	slices.Sort(out)
	return out
}

func assertClean(t testing.TB, dir string) {
	t.Helper()
	if st := git(t, dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Fatalf("git status not clean:\n%s", st)
	}
}

// assertUnwritten checks that nothing was written since HEAD was before.
func assertUnwritten(t testing.TB, s *store.Store, before string) {
	t.Helper()
	if now := headOf(t, s); now != before {
		t.Errorf("HEAD moved from %s to %s: something was written", before[:12], now[:12])
	}
	assertClean(t, s.Root())
}

// envPath is where app's sealed env file is in the log.
func envPath(project, env, domain string) string {
	return projects.EnvPath(projects.Address{Project: project, Env: env, App: domain})
}

// sealedFile is the env file as committed at HEAD.
func sealedFile(t testing.TB, s *store.Store, p string) []byte {
	t.Helper()
	cmd := exec.Command("git", "cat-file", "blob", "HEAD:"+p)
	cmd.Dir = s.Root()
	data, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s at HEAD: %v", p, err)
	}
	return data
}

// openAs decrypts domain's env as o.
func openAs(t testing.TB, s *store.Store, o operator, domain string) (dotenv.File, error) {
	t.Helper()
	f, _, _, err := as(s, o).Open(ctx, domain)
	return f, err
}

// assertNoLeak fails when any git object of the repositories at dirs, or
// any file under their .git/meta, holds one of values.
func assertNoLeak(t testing.TB, values []string, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		cmd := exec.Command("git", "cat-file", "--batch-all-objects", "--batch")
		cmd.Dir = dir
		objects, err := cmd.Output()
		if err != nil || len(objects) == 0 {
			t.Fatalf("%s: cat-file: %v", dir, err)
		}
		hay := map[string][]byte{"the git objects of " + dir: objects}
		meta := filepath.Join(dir, ".git", "meta")
		if _, err := os.Stat(meta); err != nil {
			t.Fatalf("no .git/meta in %s: %v", dir, err)
		}
		filepath.WalkDir(meta, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				data, _ := os.ReadFile(p)
				hay[p] = data
			}
			return nil
		})
		for name, data := range hay {
			for _, v := range values {
				if bytes.Contains(data, []byte(v)) {
					t.Errorf("the value %s leaked into %s", v, name)
				}
			}
		}
	}
}
