package envs_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
)

// scriptEditor is $EDITOR as a real executable shell script: its n-th
// run does steps[n-1] to the file "$1", after counting the run and keeping
// a copy of what it was handed.
type scriptEditor struct {
	t    *testing.T
	path string
	env  []string
}

func newEditor(t *testing.T, steps ...string) *scriptEditor {
	t.Helper()
	var cases strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&cases, "%d) %s ;;\n", i+1, s)
	}
	script := fmt.Sprintf(`#!/bin/sh
n=$(( $(cat "$0.count" 2>/dev/null || echo 0) + 1 ))
echo $n > "$0.count"
cp "$1" "$0.seen.$n"
case $n in
%s*) echo "opened $n times" >&2; exit 9 ;;
esac
`, cases.String())
	p := filepath.Join(t.TempDir(), "editor")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &scriptEditor{t: t, path: p}
}

// run is the editor as Edit runs it.
func (s *scriptEditor) run(p string) error {
	cmd := exec.Command(s.path, p)
	cmd.Env = append(os.Environ(), s.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("editor: %w: %s", err, out)
	}
	return nil
}

// opened counts the editor's runs.
func (s *scriptEditor) opened() int {
	data, _ := os.ReadFile(s.path + ".count")
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

// saw is what the n-th run was handed.
func (s *scriptEditor) saw(n int) string {
	data, err := os.ReadFile(fmt.Sprintf("%s.seen.%d", s.path, n))
	if err != nil {
		s.t.Fatalf("the editor's run %d: %v", n, err)
	}
	return string(data)
}

// line is line n of text, counted from 1.
func line(text string, n int) string {
	lines := strings.Split(text, "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}

// What the editor saves that does not read opens it again, with a header
// saying what and where; the header is not committed. Saved unchanged it
// stops, keeping the operator's text; emptied it cancels.
func TestEditReopensOnWhatDoesNotRead(t *testing.T) {
	const bad = "this line has a PLANT-secret-d15ea5e"
	alice := newOperator(t, "alice")
	for _, c := range []struct {
		name  string
		steps []string
		// opened is how many times the editor ran; header is the first
		// line of what its n-th run saw (headerAt), at whose line
		// badLine, when set, the problem stands.
		opened   int
		headerAt int
		header   string
		badLine  int
		// want is the env committed; else is and says the refusal, kept
		// the text kept.
		want      string
		is        error
		says      string
		kept      string
		cancelled bool
	}{
		{name: "fixed on the second run",
			steps:  []string{`echo '` + bad + `' >> "$1"`, `sed -i '/PLANT-secret/d' "$1"; echo 'FIXED=1' >> "$1"`},
			opened: 2, headerAt: 2, header: "#~ meta: your edit line 9: not a dotenv file: expected KEY=VALUE or a # comment", badLine: 9,
			want: appRoundTrip + "FIXED=1\n"},
		{name: "fixed with the header taken out by hand",
			steps:  []string{`echo '` + bad + `' >> "$1"`, `sed -i '/^#~/d; s/^this line has a PLANT-secret-d15ea5e$/FIXED=2/' "$1"`},
			opened: 2, want: appRoundTrip + "FIXED=2\n"},
		{name: "two problems, one after the other",
			steps: []string{`echo 'KEY WITH SPACE=1' >> "$1"`,
				`sed -i 's/^KEY WITH SPACE=1$/A=1/' "$1"; echo 'DOMAIN=twice' >> "$1"`,
				`sed -i '/^DOMAIN=twice$/d' "$1"`},
			opened: 3, headerAt: 3, header: "#~ meta: your edit line 10: not a dotenv file: DOMAIN is already set on line 5; keep one", badLine: 10,
			want: appRoundTrip + "A=1\n"},
		{name: "saved unchanged after the header",
			steps:  []string{`echo '` + bad + `' >> "$1"`, `:`},
			opened: 2, is: dotenv.ErrSyntax, says: "your edit line 6: not a dotenv file: expected KEY=VALUE or a # comment; saved unchanged, so nothing was written; your edit is kept in ",
			kept: appRoundTrip + bad + "\n"},
		{name: "the editor fails on the reopened file",
			steps:  []string{`echo '` + bad + `' >> "$1"`, `echo 'MORE=1' >> "$1"; exit 3`},
			opened: 2, says: "exit status 3: ; nothing was written; your edit is kept in ",
			kept: appRoundTrip + bad + "\nMORE=1\n"},
		{name: "a sealed file pasted, then emptied",
			steps:  []string{`cp "$SEALED" "$1"`, `: > "$1"`},
			opened: 2, headerAt: 2, header: "#~ meta: your edit: already sops-encrypted (line 5 holds an encrypted value); give meta the decrypted file",
			is: envs.ErrCancelled, says: "edit cancelled, no changes made: the file was empty", cancelled: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newLog(t, alice)
			importApp(t, s, alice, &metav1.Address{App: app}, appEnv)
			before := headOf(t, s)
			ed := newEditor(t, c.steps...)
			ed.env = []string{"SEALED=" + filepath.Join(s.Root(), projects.EnvPath(projects.Address{Project: "coop", Env: "prod", App: app}))}
			tmp := t.TempDir()
			res, err := as(s, alice).Edit(ctx, app, tmp, ed.run, envs.Note{})
			if n := ed.opened(); n != c.opened {
				t.Errorf("the editor ran %d times, want %d", n, c.opened)
			}
			if !strings.HasPrefix(ed.saw(1), appRoundTrip) || strings.HasPrefix(ed.saw(1), "#~") {
				t.Errorf("the first run saw\n%s", ed.saw(1))
			}
			if c.headerAt > 0 {
				saw := ed.saw(c.headerAt)
				if line(saw, 1) != c.header {
					t.Errorf("run %d saw\n%s\nwant its first line %q", c.headerAt, saw, c.header)
				}
				if c.badLine > 0 && line(saw, c.badLine) == "" || c.badLine > 0 && strings.HasPrefix(line(saw, c.badLine), "#~") {
					t.Errorf("the header points at line %d of\n%s", c.badLine, saw)
				}
				if line(saw, 4) == "" || strings.HasPrefix(line(saw, 4), "#~") || !strings.HasPrefix(line(saw, 3), "#~") {
					t.Errorf("the header is not three lines:\n%s", saw)
				}
			}
			assertKept(t, tmp, err, c.kept)
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			assertNoLeak(t, []string{"PLANT-secret-d15ea5e"}, s.Root())
			if c.want == "" {
				if err == nil || c.is != nil && !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("edit: %v, want %v saying %q", err, c.is, c.says)
				}
				if strings.Contains(err.Error(), "PLANT") {
					t.Errorf("the error shows a value: %v", err)
				}
				assertUnwritten(t, s, before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 1 || git(t, s.Root(), "rev-parse", "HEAD~1") != before {
				t.Errorf("not one commit of one event: %v", res.Events)
			}
			f, err := openAs(t, s, alice, app)
			if err != nil || string(f.Bytes()) != c.want {
				t.Errorf("committed\n%s\nwant\n%s%v", f.Bytes(), c.want, err)
			}
		})
	}
}

// Another operator changes the env while the editor is open: the edit is
// not thrown away but opened again on top of their change, fetched; keys
// both changed stand between conflict markers for the operator to settle.
func TestEditReopensOnAConcurrentChange(t *testing.T) {
	for _, c := range []struct {
		name string
		// theirs is bob's change, pushed while alice's editor is open;
		// steps are alice's editor's runs.
		theirs []envs.KV
		steps  []string
		opened int
		// rebased is what alice's second run saw, below the header;
		// header a line of the header.
		rebased, header string
		want            string
		says            string
		kept            string
	}{
		{name: "apart: saved as it is",
			theirs:  []envs.KV{{Key: "FROM_BOB", Value: "1"}},
			steps:   []string{`echo 'FROM_ALICE=1' >> "$1"`, `:`},
			opened:  2,
			header:  "#~ Save it as it is to commit it.",
			rebased: "A=1\nFROM_ALICE=1\nFROM_BOB=1\n",
			want:    "A=1\nFROM_ALICE=1\nFROM_BOB=1\n"},
		{name: "apart: changed again",
			theirs:  []envs.KV{{Key: "A", Value: "bob"}},
			steps:   []string{`echo 'FROM_ALICE=1' >> "$1"`, `echo 'MORE=1' >> "$1"`},
			opened:  2,
			rebased: "A=bob\nFROM_ALICE=1\n",
			want:    "A=bob\nFROM_ALICE=1\nMORE=1\n"},
		{name: "the same key, settled",
			theirs:  []envs.KV{{Key: "A", Value: "bob"}, {Key: "FROM_BOB", Value: "1"}},
			steps:   []string{`sed -i 's/^A=1$/A=alice/' "$1"`, `sed -i '/^<<<<<<< yours$/d; /^=======$/,/^>>>>>>> theirs$/d' "$1"`},
			opened:  2,
			header:  `#~ You both changed A: keep one line of each between`,
			rebased: "<<<<<<< yours\nA=alice\n=======\nA=bob\n>>>>>>> theirs\nFROM_BOB=1\n",
			want:    "A=alice\nFROM_BOB=1\n"},
		{name: "the same key, saved with the markers, then settled",
			theirs: []envs.KV{{Key: "A", Value: "bob"}},
			steps:  []string{`sed -i 's/^A=1$/A=alice/' "$1"`, `:`, `sed -i '/^#~/d; /^<<<<<<< yours$/d; /^=======$/,/^>>>>>>> theirs$/d' "$1"`},
			opened: 3, rebased: "<<<<<<< yours\nA=alice\n=======\nA=bob\n>>>>>>> theirs\n",
			want: "A=alice\n"},
		{name: "the same key, left unsettled",
			theirs: []envs.KV{{Key: "A", Value: "bob"}},
			steps:  []string{`sed -i 's/^A=1$/A=alice/' "$1"`, `:`, `:`},
			opened: 3, rebased: "<<<<<<< yours\nA=alice\n=======\nA=bob\n>>>>>>> theirs\n",
			says: "your edit line 1: not a dotenv file: an unresolved conflict: keep one of the lines between \"<<<<<<< yours\" and \">>>>>>> theirs\", or none, and remove the markers; saved unchanged, so nothing was written; your edit is kept in ",
			kept: "<<<<<<< yours\nA=alice\n=======\nA=bob\n>>>>>>> theirs\n"},
		{name: "removed here, changed there",
			theirs:  []envs.KV{{Key: "A", Value: "bob"}},
			steps:   []string{`printf 'B=1\n' > "$1"`, `sed -i '/^<<<<<<< yours$/,/^=======$/d; /^>>>>>>> theirs$/d' "$1"`},
			opened:  2,
			rebased: "B=1\n<<<<<<< yours\n=======\nA=bob\n>>>>>>> theirs\n",
			want:    "B=1\nA=bob\n"},
		{name: "emptied on seeing their change",
			theirs: []envs.KV{{Key: "FROM_BOB", Value: "1"}},
			steps:  []string{`echo 'FROM_ALICE=1' >> "$1"`, `: > "$1"`},
			opened: 2, rebased: "A=1\nFROM_ALICE=1\nFROM_BOB=1\n",
			says: "edit cancelled, no changes made: the file was empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			alice, bob := newOperator(t, "alice"), newOperator(t, "bob")
			remote, clones := shared(t, alice, bob)
			ed := newEditor(t, c.steps...)
			var warned []string
			e := as(clones[0], alice)
			e.Warn = func(format string, args ...any) { warned = append(warned, fmt.Sprintf(format, args...)) }
			tmp := t.TempDir()
			res, err := e.Edit(ctx, app, tmp, func(p string) error {
				if ed.opened() == 0 {
					if r, err := as(clones[1], bob).Set(ctx, app, c.theirs, envs.Note{}); err != nil || !r.Pushed {
						t.Fatalf("bob's change: %v, %v", r, err)
					}
				}
				return ed.run(p)
			}, envs.Note{})
			if n := ed.opened(); n != c.opened {
				t.Errorf("the editor ran %d times, want %d", n, c.opened)
			}
			second := ed.saw(2)
			if !strings.HasPrefix(second, "#~ meta: bob (env event ") || !strings.Contains(line(second, 1), "changed this env while you edited it: ") {
				t.Errorf("the second run's header:\n%s", second)
			}
			if c.header != "" && !strings.Contains(second, "\n"+c.header+"\n") {
				t.Errorf("the second run's header lacks %q:\n%s", c.header, second)
			}
			if got := string(withoutMetaHeader(second)); got != c.rebased {
				t.Errorf("the second run saw\n%s\nwant below the header\n%s", got, c.rebased)
			}
			if len(warned) != 1 || !strings.Contains(warned[0], "bob (env event") || !strings.Contains(warned[0], "changed the env of "+app+" while you edited it") {
				t.Errorf("told %q", warned)
			}
			assertKept(t, tmp, err, c.kept)
			if c.want == "" {
				if err == nil || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("edit: %v, want it to say %q", err, c.says)
				}
				if f, err := openAs(t, clones[0], alice, app); err != nil || slices.Contains(f.Keys(), "FROM_ALICE") {
					t.Errorf("alice's clone holds %v, %v", f.Keys(), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Pushed {
				t.Errorf("not pushed: %v", res.Warnings)
			}
			if err := clones[1].Pull(ctx); err != nil {
				t.Fatal(err)
			}
			for i, o := range []operator{alice, bob} {
				f, err := openAs(t, clones[i], o, app)
				if err != nil || string(f.Bytes()) != c.want {
					t.Errorf("%s's clone holds\n%s\nwant\n%s%v", o.name, f.Bytes(), c.want, err)
				}
			}
			if tip := git(t, remote, "rev-parse", "main"); tip != headOf(t, clones[0]) {
				t.Error("the remote is not at alice's edit")
			}
		})
	}
}

// withoutMetaHeader is text without the "#~" lines at its top.
func withoutMetaHeader(text string) string {
	for strings.HasPrefix(text, "#~") {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			return ""
		}
		text = text[i+1:]
	}
	return text
}
