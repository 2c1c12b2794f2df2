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
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// Edit hands the editor a private file holding the plain env, commits what
// it saved, and leaves no trace of the file, however the edit ends.
func TestEdit(t *testing.T) {
	alice := newOperator(t, "alice")
	for _, c := range []struct {
		name string
		// save is what the editor does to the file; e is the operator's
		// view, for an editor that changes the env meanwhile.
		save func(t *testing.T, e *envs.Envs, path string) error
		// is and says describe the refusal; neither for a commit.
		is   error
		says string
		// want is the env afterwards, when committed.
		want string
	}{
		{name: "saves a change", save: func(t *testing.T, _ *envs.Envs, p string) error {
			return appendFile(p, "EDITED=PLANT-edit-c0ffee\n")
		}, want: appRoundTrip + "EDITED=PLANT-edit-c0ffee\n"},
		{name: "rewrites the file", save: func(t *testing.T, _ *envs.Envs, p string) error {
			return os.WriteFile(p, []byte("# only this\nDOMAIN=app.example.org\n"), 0o600)
		}, want: "# only this\nDOMAIN=app.example.org\n"},
		{name: "the editor fails", save: func(t *testing.T, _ *envs.Envs, p string) error {
			appendFile(p, "HALF=PLANT-half-91c5aa\n")
			return errors.New("editor exited with status 1")
		}, says: "editor exited with status 1; nothing was written"},
		{name: "saves something that is not dotenv", save: func(t *testing.T, _ *envs.Envs, p string) error {
			return appendFile(p, "this line has a PLANT-secret-d15ea5e\n")
		}, is: dotenv.ErrSyntax, says: "your edit line 6: not a dotenv file"},
		{name: "saves a sealed file", save: func(t *testing.T, e *envs.Envs, p string) error {
			data, _, err := e.Store.EnvFile(app)
			if err != nil {
				return err
			}
			return os.WriteFile(p, data, 0o600)
		}, is: dotenv.ErrSealed, says: "already sops-encrypted"},
		{name: "saves it unchanged", save: func(t *testing.T, _ *envs.Envs, p string) error { return nil }, is: store.ErrNoChange},
		{name: "removes the file", save: func(t *testing.T, _ *envs.Envs, p string) error { return os.Remove(p) }, is: os.ErrNotExist},
		{name: "another change lands while the editor is open", save: func(t *testing.T, e *envs.Envs, p string) error {
			if _, err := e.Set(ctx, app, []envs.KV{{Key: "MEANWHILE", Value: "1"}}, envs.Note{}); err != nil {
				t.Fatal(err)
			}
			return appendFile(p, "EDITED=PLANT-lost-4e7b12\n")
		}, is: store.ErrConflict, says: "changed since you read it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newLog(t, alice)
			importApp(t, s, alice, &metav1.Address{App: app}, appEnv)
			e := as(s, alice)
			tmp := t.TempDir()
			saw := ""
			var inner string // HEAD after a change the editor made meanwhile
			res, err := e.Edit(ctx, app, tmp, func(p string) error {
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
				err = c.save(t, e, p)
				inner = headOf(t, s)
				return err
			}, envs.Note{Message: "by hand"})
			if saw == "" {
				t.Fatal("the editor was not run")
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left behind under the temporary directory: %v", left)
			}
			if _, err := os.Lstat(saw); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the editor's file is still there: %v", err)
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
				assertUnwritten(t, s, inner)
				assertNoLeak(t, []string{"PLANT-half-91c5aa", "PLANT-secret-d15ea5e", "PLANT-lost-4e7b12"}, s.Root())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if git(t, s.Root(), "rev-parse", "HEAD~1") != inner {
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
