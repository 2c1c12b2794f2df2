package envs_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// Export writes the plain env abra reads: mode 0600, the whole file
// replaced, nothing beside it; a file that says something the log's env
// does not stays, unless forced.
func TestExport(t *testing.T) {
	alice, carol := newOperator(t, "alice"), newOperator(t, "carol")
	s := newLog(t, alice)
	importApp(t, s, alice, &metav1.Address{App: app}, appEnv)
	appendDeploy(t, s, "deployed.example.org")
	long := strings.Repeat("OLD_KEY=an older and much longer value than any of the new ones\n", 200)
	// requoted is appRoundTrip as abra reads it the same, written otherwise.
	requoted := strings.Replace(appRoundTrip, "DOMAIN=app.example.org", `DOMAIN="app.example.org"`, 1)
	requoted = strings.Replace(requoted, "# length=128", "#  length=128", 1)
	for _, c := range []struct {
		name     string
		as       operator
		domain   string
		existing string // "" for none
		mode     os.FileMode
		force    bool
		is       error
		says     string
		// overwritten are the keys a forced export replaced.
		overwritten []string
	}{
		{name: "a new file", as: alice, domain: app},
		{name: "replaces a file that reads the same", as: alice, domain: app, existing: requoted, mode: 0o644},
		{name: "refuses a file with a key more", as: alice, domain: app, existing: appRoundTrip + "LOCAL_ONLY=PLANT-local-1\n", mode: 0o644,
			is: envs.ErrLocalChanges, says: "differs from the log's env in LOCAL_ONLY (only in the file); nothing was written: `meta env import app.example.org "},
		{name: "refuses a file with another value and a key less", as: alice, domain: app, existing: strings.Replace(strings.Replace(appRoundTrip, "PLANT-import-7f3a9c", "PLANT-local-2", 1), "DOMAIN=app.example.org\n", "", 1), mode: 0o600,
			is: envs.ErrLocalChanges, says: "SMTP_PASSWORD (another value), DOMAIN (not in the file)"},
		{name: "refuses a file it cannot read", as: alice, domain: app, existing: long, mode: 0o644, is: envs.ErrLocalChanges, says: "line 2: not a dotenv file: OLD_KEY is already set on line 1; keep one; so meta cannot tell what replacing it would change"},
		{name: "forced, replaces a longer file whole", as: alice, domain: app, existing: long, mode: 0o644, force: true},
		{name: "forced, replaces a read-only file", as: alice, domain: app, existing: "A=PLANT-local-3\n", mode: 0o444, force: true, overwritten: []string{"A", "DOMAIN", "SECRET_KEY_BASE_VERSION", "SMTP_PASSWORD"}},
		{name: "an app the log does not know leaves the file", as: alice, domain: "new.example.org", existing: long, mode: 0o644, force: true, is: store.ErrNotFound},
		{name: "an app without an env leaves the file", as: alice, domain: "deployed.example.org", existing: long, mode: 0o644, force: true, is: store.ErrNoEnv},
		{name: "not a recipient leaves the file", as: carol, domain: app, existing: long, mode: 0o600, force: true, is: sealed.ErrNotRecipient},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, app+".env")
			if c.existing != "" {
				if err := os.WriteFile(p, []byte(c.existing), c.mode); err != nil {
					t.Fatal(err)
				}
			}
			res, err := as(s, c.as).Export(ctx, c.domain, p, c.force)
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if c.is != nil {
				if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("export: %v, want %v saying %q", err, c.is, c.says)
				}
				if strings.Contains(err.Error(), "PLANT") {
					t.Errorf("the error shows a value: %v", err)
				}
				if data, _ := os.ReadFile(p); string(data) != c.existing {
					t.Error("the file was changed")
				}
				if !slices.Equal(names, []string{app + ".env"}) {
					t.Errorf("the directory holds %v", names)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			if data, _ := os.ReadFile(p); string(data) != appRoundTrip || string(res.Data) != appRoundTrip {
				t.Errorf("exported\n%s\nwant\n%s", data, appRoundTrip)
			}
			ov := res.Overwritten
			if got := slices.Sorted(slices.Values(slices.Concat(ov.Added, ov.Changed, ov.Removed))); !slices.Equal(got, c.overwritten) {
				t.Errorf("overwritten %v, want %v", got, c.overwritten)
			}
			if !slices.Equal(names, []string{app + ".env"}) {
				t.Errorf("the directory holds %v, want the file alone", names)
			}
		})
	}
	assertClean(t, s.Root())
}

// The scenario: the env was imported while TYPE said 1.3.0; abra
// then deployed 1.5.0, writing TYPE=...:1.5.0 and meta the stamp into
// abra's file, never into the log's env. Export writes the version the log
// says runs, keeps the stamp, and replaces the file, which differs in
// those deploy keys only.
func TestExportWritesTheVersionThatRuns(t *testing.T) {
	const imported = "TYPE=custom-html:1.3.0\nDOMAIN=html.example.org\n"
	for _, c := range []struct {
		name string
		// sealed is the env imported; deployed and chaos what the log
		// then records as running ("" for no deploy).
		sealed, deployed, chaos string
		// local is the file export replaces ("" for none).
		local string
		// want is what export writes, was the version local named.
		want, was string
	}{
		{name: "abra's file after the deploy", sealed: imported, deployed: "1.5.0+1",
			local: "TYPE=custom-html:1.5.0+1\nDOMAIN=html.example.org\n# managed by meta\nOPERATOR_SYNC_VERSION=1.5.0+1\n",
			want:  "TYPE=custom-html:1.5.0+1\nDOMAIN=html.example.org\n# managed by meta\nOPERATOR_SYNC_VERSION=1.5.0+1\n", was: "1.5.0+1"},
		{name: "no file yet", sealed: imported, deployed: "1.5.0+1",
			want: "TYPE=custom-html:1.5.0+1\nDOMAIN=html.example.org\n"},
		{name: "a file behind the log", sealed: imported, deployed: "1.5.0+1",
			local: "TYPE=custom-html:1.4.0\nDOMAIN=html.example.org\nOPERATOR_SYNC_VERSION=1.4.0\n",
			want:  "TYPE=custom-html:1.5.0+1\nDOMAIN=html.example.org\n# managed by meta\nOPERATOR_SYNC_VERSION=1.5.0+1\n", was: "1.4.0"},
		{name: "a chaos deploy", sealed: imported, deployed: "1.5.0+1", chaos: "eb96de94+U",
			local: "TYPE=custom-html:eb96de94+U\nDOMAIN=html.example.org\n",
			want:  "TYPE=custom-html:eb96de94+U\nDOMAIN=html.example.org\n", was: "eb96de94+U"},
		{name: "a stale stamp in the log's env", sealed: imported + "OPERATOR_SYNC_VERSION=1.3.0\n", deployed: "1.5.0+1",
			want: "TYPE=custom-html:1.5.0+1\nDOMAIN=html.example.org\n# managed by meta\nOPERATOR_SYNC_VERSION=1.5.0+1\n"},
		{name: "RECIPE, not TYPE", sealed: "RECIPE=custom-html\nDOMAIN=html.example.org\n", deployed: "1.5.0+1",
			local: "RECIPE=custom-html:1.5.0+1\nDOMAIN=html.example.org\n",
			want:  "RECIPE=custom-html:1.5.0+1\nDOMAIN=html.example.org\n", was: "1.5.0+1"},
		{name: "a comment on the recipe line", sealed: "TYPE=custom-html:1.3.0 # pinned\nDOMAIN=html.example.org\n", deployed: "1.5.0+1",
			local: "TYPE=custom-html:1.5.0+1 # pinned\nDOMAIN=html.example.org\n",
			want:  "TYPE=custom-html:1.5.0+1 # pinned\nDOMAIN=html.example.org\n", was: "1.5.0+1"},
		{name: "no deploy in the log keeps the file's version", sealed: imported,
			local: "TYPE=custom-html:1.4.0\nDOMAIN=html.example.org\n",
			want:  "TYPE=custom-html:1.4.0\nDOMAIN=html.example.org\n", was: "1.4.0"},
		{name: "no deploy and no file keeps the log's env", sealed: imported,
			want: imported},
	} {
		t.Run(c.name, func(t *testing.T) {
			alice := newOperator(t, "alice")
			s := newLog(t, alice)
			const domain = "html.example.org"
			importApp(t, s, alice, &metav1.Address{App: domain}, c.sealed)
			if c.deployed != "" {
				ev := &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: c.deployed, ChaosVersion: c.chaos, Address: &metav1.Address{App: domain}}
				if _, err := s.Append(ctx, ev, &metav1.Actor{Name: "alice"}, time.Now(), store.AppendOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(t.TempDir(), domain+".env")
			if c.local != "" {
				if err := os.WriteFile(p, []byte(c.local), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			res, err := as(s, alice).Export(ctx, domain, p, false)
			if err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(p); string(data) != c.want {
				t.Errorf("exported\n%s\nwant\n%s", data, c.want)
			}
			if res.Was != c.was {
				t.Errorf("the file named %q, want %q", res.Was, c.was)
			}
			if !res.Overwritten.Empty() {
				t.Errorf("overwrote %+v: only deploy keys differed", res.Overwritten)
			}
			// Without a file, the same text.
			res, err = as(s, alice).Export(ctx, domain, "", false)
			if err != nil || c.local == "" && string(res.Data) != c.want {
				t.Errorf("to stdout: %q, %v", res.Data, err)
			}
		})
	}
}
