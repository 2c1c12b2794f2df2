package integrity

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

var ctx = context.Background()

// history is a real repository that test steps commit to with the git CLI,
// as people and other tools do.
type history struct {
	t    *testing.T
	dir  string
	repo *gitrepo.Repo
}

func newHistory(t *testing.T) *history {
	t.Helper()
	dir := t.TempDir()
	h := &history{t: t, dir: dir}
	h.git("init", "-q", "-b", "main")
	h.write("meta.yaml", "version: 1\nproject: coop\nenv: prod\n")
	h.commit("start")
	repo, err := gitrepo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	h.repo = repo
	return h
}

func (h *history) git(args ...string) string {
	h.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = h.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Mallory", "GIT_AUTHOR_EMAIL=m@example.com", "GIT_COMMITTER_NAME=Mallory", "GIT_COMMITTER_EMAIL=m@example.com", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		h.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (h *history) write(p, content string) {
	h.t.Helper()
	full := filepath.Join(h.dir, filepath.FromSlash(p))
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *history) commit(msg string) string {
	h.git("add", "-A")
	h.git("commit", "-q", "--allow-empty", "-m", msg)
	return h.git("rev-parse", "HEAD")
}

// event commits a valid record of app and returns its path and content.
func (h *history) event(app, version string) (string, string) {
	h.t.Helper()
	id := record.NewID(time.Now())
	at, _ := record.IDTime(id)
	ev := &metav1.Event{Format: record.FormatVersion, Id: id, Time: timestamppb.New(at), Actor: &metav1.Actor{Name: "Alice"},
		Address: &metav1.Address{Project: "coop", Env: "prod", App: app}, Kind: metav1.Kind_KIND_DEPLOY,
		Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: version}
	data, err := record.Marshal(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	p := record.Path(ev)
	h.write(p, string(data))
	return p, string(data)
}

func (h *history) blob(p string) string { return h.git("rev-parse", "HEAD:"+p) }

func (h *history) check(st *State, contents bool) *State {
	h.t.Helper()
	tip, err := h.repo.Head()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := st.Check(ctx, h.repo, "main", tip, contents, nil); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// problems lists the state's findings as "commit-subject: what" lines.
func problems(st *State) []string {
	var out []string
	for _, f := range st.Findings {
		for _, p := range f.Problems {
			what, _, _ := strings.Cut(p.What, ":")
			out = append(out, f.Subject+": "+what)
		}
	}
	sort.Strings(out)
	return out
}

func TestRules(t *testing.T) {
	tests := []struct {
		name     string
		steps    func(h *history) (restored, excluded []string)
		contents bool
		want     []string
	}{
		{"valid appends", func(h *history) ([]string, []string) {
			h.event("a.example.com", "1.0.0")
			h.commit("deploy")
			h.event("b.example.com", "1.0.0")
			h.commit("deploy b")
			return nil, nil
		}, true, nil},
		{"a record modified", func(h *history) ([]string, []string) {
			p, _ := h.event("a.example.com", "1.0.0")
			h.commit("deploy")
			first := h.blob(p)
			h.write(p, "forged")
			h.commit("tamper")
			return []string{p + " " + first}, nil
		}, false, []string{"tamper: " + Modified}},
		{"a record deleted", func(h *history) ([]string, []string) {
			p, _ := h.event("a.example.com", "1.0.0")
			h.commit("deploy")
			first := h.blob(p)
			h.git("rm", "-q", p)
			h.commit("tidy")
			return []string{p + " " + first}, nil
		}, false, []string{"tidy: " + Deleted}},
		{"modified, then restored", func(h *history) ([]string, []string) {
			p, data := h.event("a.example.com", "1.0.0")
			h.commit("deploy")
			first := h.blob(p)
			h.write(p, "forged")
			h.commit("tamper")
			h.write(p, data)
			h.commit("restore")
			return []string{p + " " + first}, nil
		}, false, []string{"tamper: " + Modified}},
		{"deleted, then re-added", func(h *history) ([]string, []string) {
			p, data := h.event("a.example.com", "1.0.0")
			h.commit("deploy")
			first := h.blob(p)
			h.git("rm", "-q", p)
			h.commit("drop")
			h.write(p, data)
			h.commit("re-add")
			return []string{p + " " + first}, nil
		}, false, []string{"drop: " + Deleted}},
		{"deleted, then re-added otherwise", func(h *history) ([]string, []string) {
			p, _ := h.event("a.example.com", "1.0.0")
			h.commit("deploy")
			first := h.blob(p)
			h.git("rm", "-q", p)
			h.commit("drop")
			h.write(p, "forged")
			h.commit("re-add")
			return []string{p + " " + first}, nil
		}, false, []string{"drop: " + Deleted, "re-add: " + ReAdded}},
		{"junk on the forge", func(h *history) ([]string, []string) {
			junk := []string{
				"projects/coop/prod/a.example.com/2026-11/01JD0000000000000000000001.pb", // random bytes
				"projects/coop/prod/a.example.com/2026-11/hello.pb",
				"projects/coop/prod/a.example.com/1999-13/01JD0000000000000000000002.pb",
				"projects/Bad Proj/prod/a.example.com/2026-11/01JD0000000000000000000003.pb",
			}
			for _, p := range junk {
				h.write(p, "\x00\x01random")
			}
			h.commit("junk")
			return nil, junk
		}, true, []string{"junk: " + BadRecord, "junk: " + NotRecord, "junk: " + NotRecord, "junk: " + NotRecord}},
		{"a record copied to another app", func(h *history) ([]string, []string) {
			p, data := h.event("a.example.com", "1.0.0")
			h.commit("deploy")
			other := strings.Replace(p, "a.example.com", "b.example.com", 1)
			h.write(other, data)
			h.commit("copy")
			return nil, []string{other}
		}, true, []string{"copy: " + BadRecord}},
		{"junk, then removed", func(h *history) ([]string, []string) {
			h.write("projects/coop/prod/a.example.com/notes.txt", "hi")
			h.commit("notes")
			h.git("rm", "-q", "projects/coop/prod/a.example.com/notes.txt")
			h.commit("no notes")
			return nil, nil
		}, false, []string{"notes: " + NotRecord}},
		{"a broken meta.yaml, then mended", func(h *history) ([]string, []string) {
			h.write("meta.yaml", "project: [unclosed\n")
			h.commit("break")
			h.write("meta.yaml", "version: 1\nproject: coop\nenv: staging\n")
			h.commit("mend")
			return nil, nil
		}, false, []string{"break: " + BadConfig}},
		{"an env file without its event", func(h *history) ([]string, []string) {
			h.write("projects/coop/prod/a.example.com/a.example.com.env", "sops_mac=x\n")
			h.commit("by hand")
			return nil, nil
		}, false, []string{"by hand: " + EnvNoEvent}},
		{"an env file with its event", func(h *history) ([]string, []string) {
			env := "sops_mac=y\n"
			h.write("projects/coop/prod/a.example.com/a.example.com.env", env)
			id := record.NewID(time.Now())
			at, _ := record.IDTime(id)
			ev := &metav1.Event{Format: record.FormatVersion, Id: id, Time: timestamppb.New(at), Actor: &metav1.Actor{Name: "Alice"},
				Address: &metav1.Address{Project: "coop", Env: "prod", App: "a.example.com"}, Kind: metav1.Kind_KIND_ENV,
				Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, EnvDigest: sealed.Digest([]byte(env)),
				Body: &metav1.Event_Env{Env: &metav1.EnvChange{Reason: "set", Added: []string{"A"}}}}
			data, _ := record.Marshal(ev)
			h.write(record.Path(ev), string(data))
			h.commit("env set")
			return nil, nil
		}, true, nil},
		{"a merge that drops a record", func(h *history) ([]string, []string) {
			p, _ := h.event("a.example.com", "1.0.0")
			h.commit("deploy")
			first := h.blob(p)
			h.git("checkout", "-q", "-b", "side")
			h.event("b.example.com", "1.0.0")
			h.commit("side deploy")
			h.git("checkout", "-q", "main")
			h.event("c.example.com", "1.0.0")
			h.commit("main deploy")
			h.git("merge", "-q", "--no-commit", "side")
			h.git("rm", "-q", p)
			h.commit("merge")
			return []string{p + " " + first}, nil
		}, false, []string{"merge: " + Deleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(t)
			restored, excluded := tt.steps(h)
			st := h.check(New(), tt.contents)
			sort.Strings(tt.want)
			if got := problems(st); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var gotRestored []string
			for p, b := range st.Restored {
				gotRestored = append(gotRestored, p+" "+b)
			}
			if strings.Join(gotRestored, ",") != strings.Join(restored, ",") {
				t.Errorf("restored %v, want %v", gotRestored, restored)
			}
			for _, p := range excluded {
				if st.Excluded[p] == "" {
					t.Errorf("%s is not excluded: %v", p, st.Excluded)
				}
			}
			if len(st.Excluded) != len(excluded) {
				t.Errorf("excluded %v, want %v", st.Excluded, excluded)
			}
			// Checked incrementally, commit by commit, the state is the same.
			again := New()
			for _, c := range strings.Fields(h.git("rev-list", "--reverse", "--topo-order", "HEAD")) {
				if err := again.Check(ctx, h.repo, "main", gitrepo.NewHash(c), tt.contents, nil); err != nil {
					t.Fatal(err)
				}
			}
			if strings.Join(problems(again), "\n") != strings.Join(problems(st), "\n") || len(again.Restored) != len(st.Restored) || len(again.Excluded) != len(st.Excluded) {
				t.Errorf("step by step: %v, %v, %v", problems(again), again.Restored, again.Excluded)
			}
		})
	}
}

// A branch rewritten under the state (a force-push, a replay) is checked
// from where the histories meet, and findings of commits it lost go.
func TestRewrittenHistory(t *testing.T) {
	h := newHistory(t)
	p, _ := h.event("a.example.com", "1.0.0")
	base := h.commit("deploy")
	h.write(p, "forged")
	h.commit("tamper")
	st := h.check(New(), false)
	if len(st.Findings) != 1 {
		t.Fatalf("findings %v", st.Findings)
	}
	h.git("reset", "-q", "--hard", base)
	h.event("a.example.com", "1.1.0")
	h.commit("upgrade")
	h.check(st, false)
	if len(st.Findings) != 0 {
		t.Fatalf("the tamper left the history, its finding did not: %v", st.Findings)
	}
}
