package envs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// Edit hands the editor a private file holding the plain env, commits what
// it saved, and leaves no trace of the file, however the edit ends; when it
// stops on a failure after the operator changed something, it keeps their
// text in a private file of its own and names it.
func TestEdit(t *testing.T) {
	alice := newOperator(t, "alice")
	for _, c := range []struct {
		name string
		// save is what the editor does to the file.
		save func(t *testing.T, path string) error
		// is and says describe the refusal; neither for a commit.
		is   error
		says string
		// kept is the text kept for the operator ("" for none).
		kept string
		// want is the env afterwards, when committed.
		want string
	}{
		{name: "saves a change", save: func(t *testing.T, p string) error {
			return appendFile(p, "EDITED=PLANT-edit-c0ffee\n")
		}, want: appRoundTrip + "EDITED=PLANT-edit-c0ffee\n"},
		{name: "rewrites the file", save: func(t *testing.T, p string) error {
			return os.WriteFile(p, []byte("# only this\nDOMAIN=app.example.org\n"), 0o600)
		}, want: "# only this\nDOMAIN=app.example.org\n"},
		{name: "the editor fails after a change", save: func(t *testing.T, p string) error {
			appendFile(p, "HALF=PLANT-half-91c5aa\n")
			return errors.New("editor exited with status 1")
		}, says: "editor exited with status 1; nothing was written; your edit is kept in ", kept: appRoundTrip + "HALF=PLANT-half-91c5aa\n"},
		{name: "the editor fails without a change", save: func(t *testing.T, p string) error {
			return errors.New("editor exited with status 1")
		}, says: "editor exited with status 1; nothing was written"},
		{name: "saves it unchanged", save: func(t *testing.T, p string) error { return nil }, is: envs.ErrCancelled, says: "edit cancelled, no changes made"},
		{name: "empties the file", save: func(t *testing.T, p string) error { return os.WriteFile(p, []byte("\n \n"), 0o600) },
			is: envs.ErrCancelled, says: "edit cancelled, no changes made: the file was empty"},
		{name: "removes the file", save: func(t *testing.T, p string) error { return os.Remove(p) }, is: os.ErrNotExist},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newLog(t, alice)
			importApp(t, s, alice, &metav1.Address{App: app}, appEnv)
			before := headOf(t, s)
			e := as(s, alice)
			tmp := t.TempDir()
			saw := ""
			res, err := e.Edit(ctx, app, tmp, func(p string) error {
				if saw != "" {
					t.Fatal("the editor was opened again")
				}
				saw = p
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("the editor's file has mode %v, want 0600", fi.Mode().Perm())
				}
				dir := filepath.Dir(p)
				if filepath.Dir(dir) != tmp || filepath.Base(p) != app+".env" {
					t.Errorf("the editor's file is %s, want %s.env in a directory of its own under %s", p, app, tmp)
				}
				if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
					t.Errorf("its directory: %v, %v", di.Mode(), err)
				}
				if data, _ := os.ReadFile(p); string(data) != appRoundTrip {
					t.Errorf("the editor sees\n%s\nwant the plain env\n%s", data, appRoundTrip)
				}
				return c.save(t, p)
			}, envs.Note{Message: "by hand"})
			if saw == "" {
				t.Fatal("the editor was not run")
			}
			if _, err := os.Lstat(saw); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the editor's file is still there: %v", err)
			}
			assertKept(t, tmp, err, c.kept)
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left behind under the temporary directory: %v", left)
			}
			if c.want == "" {
				if err == nil {
					t.Fatal("not refused")
				}
				if c.is != nil && !errors.Is(err, c.is) {
					t.Errorf("error %v is not %v", err, c.is)
				}
				if !strings.Contains(err.Error(), c.says) {
					t.Errorf("error %q does not say %q", err, c.says)
				}
				if strings.Contains(err.Error(), "PLANT") {
					t.Errorf("the error quotes a value: %v", err)
				}
				assertUnwritten(t, s, before)
				assertNoLeak(t, []string{"PLANT-half-91c5aa"}, s.Root())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if git(t, s.Root(), "rev-parse", "HEAD~1") != before {
				t.Error("not one commit")
			}
			if ch := res.Events[0].GetEnv(); ch.GetReason() != "edit" || res.Events[0].GetMessage() != "by hand" {
				t.Errorf("event: %v", res.Events[0])
			}
			assertClean(t, s.Root())
			f, err := openAs(t, s, alice, app)
			if err != nil || string(f.Bytes()) != c.want {
				t.Errorf("committed\n%s\nwant\n%s%v", f.Bytes(), c.want, err)
			}
		})
	}
}

// assertKept checks the file an edit that stopped kept under dir: there
// when want is not "", named by err, private, holding want; it removes it.
func assertKept(t *testing.T, dir string, err error, want string) {
	t.Helper()
	kept, _ := filepath.Glob(filepath.Join(dir, "meta-env-edit-"+app+"-*.env"))
	if want == "" {
		if len(kept) != 0 {
			t.Errorf("kept %v, want nothing kept", kept)
		}
		return
	}
	if len(kept) != 1 {
		t.Fatalf("kept %v, want one file", kept)
	}
	defer os.Remove(kept[0])
	if err == nil || !strings.Contains(err.Error(), "your edit is kept in "+kept[0]+" (plain text, mode 0600: remove it when done)") {
		t.Errorf("the error does not name %s: %v", kept[0], err)
	}
	fi, serr := os.Stat(kept[0])
	if serr != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the kept file: %v, %v", fi, serr)
	}
	if data, _ := os.ReadFile(kept[0]); string(data) != want {
		t.Errorf("kept\n%s\nwant\n%s", data, want)
	}
}

// Edit of an app without an env, or one the operator cannot read, refuses
// before anything reaches a file.
func TestEditRefusesBeforeTheEditor(t *testing.T) {
	alice, carol := newOperator(t, "alice"), newOperator(t, "carol")
	s := newLog(t, alice)
	importApp(t, s, alice, &metav1.Address{App: app}, appEnv)
	appendDeploy(t, s, "deployed.example.org")
	for _, c := range []struct {
		name   string
		as     operator
		domain string
		is     error
	}{
		{"an app the log does not know", alice, "new.example.org", store.ErrNotFound},
		{"an app without an env", alice, "deployed.example.org", store.ErrNoEnv},
		{"not a recipient", carol, app, sealed.ErrNotRecipient},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			_, err := as(s, c.as).Edit(ctx, c.domain, tmp, func(string) error { t.Fatal("the editor ran"); return nil }, envs.Note{})
			if !errors.Is(err, c.is) {
				t.Fatalf("edit: %v, want %v", err, c.is)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func appendFile(p, text string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
