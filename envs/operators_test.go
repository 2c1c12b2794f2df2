package envs_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

const staging = "staging.example.org"

// handComments are comments an operator wrote into meta.yaml; every change
// meta makes to the file must keep them.
var handComments = []string{"# Ask on #ops before adding anyone.", "# the co-op's own"}

// twoApps is a log with alice as its operator, meta.yaml commented by hand,
// and two apps with env files: app in coop/prod and staging in
// coop/staging.
func twoApps(t *testing.T, ops ...operator) *store.Store {
	t.Helper()
	s := newLog(t, ops...)
	p := filepath.Join(s.Root(), config.File)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "operators:", handComments[0]+"\noperators:", 1)
	text = strings.Replace(text, "project: coop", "project: coop "+handComments[1], 1)
	if text == string(data) {
		t.Fatalf("meta.yaml is not as expected:\n%s", data)
	}
	os.WriteFile(p, []byte(text), 0o644)
	git(t, s.Root(), "commit", "-qam", "comment meta.yaml")
	importApp(t, s, ops[0], &metav1.Address{App: app}, appEnv)
	importApp(t, s, ops[0], &metav1.Address{Project: "coop", Env: "staging", App: staging}, "STAGE=PLANT-stage-0ddba11\n")
	return s
}

// Operator and access changes: each is one commit holding meta.yaml and the
// env files it re-encrypts, those only, with an env event per file; after
// each, exactly meta.yaml's readers can open each file.
func TestOperatorAndAccessChanges(t *testing.T) {
	alice, bob := newOperator(t, "alice"), newOperator(t, "bob")
	s := twoApps(t, alice)
	ops := map[string]operator{"alice": alice, "bob": bob}
	plain := map[string]string{app: appRoundTrip, staging: "STAGE=PLANT-stage-0ddba11\n"}
	paths := map[string]string{app: envPath("coop", "prod", app), staging: envPath("coop", "staging", staging)}
	for _, c := range []struct {
		name    string
		by      operator
		do      func(e *envs.Envs) (*store.Written, error)
		subject string
		// readers are each app's readers afterwards; changed the apps
		// whose file the commit re-encrypts.
		readers map[string][]string
		changed []string
	}{
		{"operator add bob", alice, func(e *envs.Envs) (*store.Written, error) { return e.AddOperator(ctx, bob.config(), envs.Note{}) },
			"operator add bob: re-encrypt 2 env file(s) by alice",
			map[string][]string{app: {"alice", "bob"}, staging: {"alice", "bob"}}, []string{app, staging}},
		{"access set narrows coop/prod to alice", alice, func(e *envs.Envs) (*store.Written, error) {
			return e.SetAccess(ctx, "coop/prod", []string{"alice"}, envs.Note{})
		}, "access set coop/prod: re-encrypt 1 env file(s) by alice",
			map[string][]string{app: {"alice"}, staging: {"alice", "bob"}}, []string{app}},
		{"access rm widens coop/prod again", alice, func(e *envs.Envs) (*store.Written, error) { return e.RemoveAccess(ctx, "coop/prod", envs.Note{}) },
			"access rm coop/prod: re-encrypt 1 env file(s) by alice",
			map[string][]string{app: {"alice", "bob"}, staging: {"alice", "bob"}}, []string{app}},
		{"access set gives coop/* to bob alone", alice, func(e *envs.Envs) (*store.Written, error) {
			return e.SetAccess(ctx, "coop/*", []string{"bob"}, envs.Note{})
		}, "access set coop/*: re-encrypt 2 env file(s) by alice",
			map[string][]string{app: {"bob"}, staging: {"bob"}}, []string{app, staging}},
		{"bob removes the coop/* rule", bob, func(e *envs.Envs) (*store.Written, error) { return e.RemoveAccess(ctx, "coop/*", envs.Note{}) },
			"access rm coop/*: re-encrypt 2 env file(s) by bob",
			map[string][]string{app: {"alice", "bob"}, staging: {"alice", "bob"}}, []string{app, staging}},
		{"operator rm bob", alice, func(e *envs.Envs) (*store.Written, error) { return e.RemoveOperator(ctx, "bob", envs.Note{}) },
			"operator rm bob: re-encrypt 2 env file(s) by alice",
			map[string][]string{app: {"alice"}, staging: {"alice"}}, []string{app, staging}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := headOf(t, s)
			w, err := c.do(as(s, c.by))
			if err != nil {
				t.Fatal(err)
			}
			if git(t, s.Root(), "rev-parse", "HEAD~1") != before || w.Commit != headOf(t, s) {
				t.Fatal("not one commit")
			}
			if got := git(t, s.Root(), "log", "-1", "--format=%s"); got != c.subject {
				t.Errorf("subject %q, want %q", got, c.subject)
			}
			want := append([]string{config.File}, w.Paths...)
			for _, a := range c.changed {
				want = append(want, paths[a])
			}
			if got := headFiles(t, s); !slices.Equal(got, sortedCopy(want)) || len(w.Events) != len(c.changed) {
				t.Errorf("the commit holds %v (%d events), want %v", got, len(w.Events), sortedCopy(want))
			}
			for _, ev := range w.Events {
				a := ev.GetAddress().GetApp()
				if ev.GetEnv().GetReason() != "rekey" || !slices.Equal(ev.GetEnv().GetRecipients(), c.readers[a]) || ev.GetEnvDigest() != sealed.Digest(sealedFile(t, s, paths[a])) {
					t.Errorf("event for %s: %v", a, ev.GetEnv())
				}
			}
			assertClean(t, s.Root())
			cfg := string(sealedFile(t, s, config.File))
			for _, comment := range handComments {
				if !strings.Contains(cfg, comment) {
					t.Errorf("meta.yaml lost %q:\n%s", comment, cfg)
				}
			}
			for a, readers := range c.readers {
				var keys []string
				for _, r := range readers {
					keys = append(keys, ops[r].recipient())
				}
				slices.Sort(keys)
				if got := sealed.Recipients(sealedFile(t, s, paths[a])); !slices.Equal(got, keys) {
					t.Errorf("%s is sealed to %v, want %v", a, got, readers)
				}
				for name, o := range ops {
					f, err := openAs(t, s, o, a)
					switch {
					case slices.Contains(readers, name) && (err != nil || string(f.Bytes()) != plain[a]):
						t.Errorf("%s, a reader, opens %s: %v\n%s", name, a, err, f.Bytes())
					case !slices.Contains(readers, name) && !errors.Is(err, sealed.ErrNotRecipient):
						t.Errorf("%s, no reader, opens %s: %v", name, a, err)
					}
				}
			}
			// As `meta env ls` lists: from the log opened afresh (see
			// TestBugStoreConfigIsStaleAfterItsOwnWrite for the store
			// that made the change).
			listed, err := as(reopen(t, s), c.by).List()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range listed {
				if l.Stale || !slices.Equal(l.Readers, c.readers[l.Address.App]) {
					t.Errorf("listed %+v", l)
				}
			}
		})
	}
	assertNoLeak(t, []string{"PLANT-import-7f3a9c", "PLANT-stage-0ddba11"}, s.Root())
}

// Whoever cannot decrypt a file is told, by operator name, who can, and
// what to ask them for: whichever operation hit it.
func TestNotRecipientErrorNamesReaders(t *testing.T) {
	alice, bob, carol := newOperator(t, "alice"), newOperator(t, "bob"), newOperator(t, "carol")
	s := twoApps(t, alice, bob)
	if _, err := as(s, alice).SetAccess(ctx, "coop/prod", []string{"alice"}, envs.Note{}); err != nil {
		t.Fatal(err)
	}
	operations := map[string]func(e *envs.Envs) error{
		"open": func(e *envs.Envs) error { _, _, _, err := e.Open(ctx, app); return err },
		"set": func(e *envs.Envs) error {
			_, err := e.Set(ctx, app, []envs.KV{{Key: "A", Value: "1"}}, envs.Note{})
			return err
		},
		"export": func(e *envs.Envs) error {
			_, err := e.Export(ctx, app, filepath.Join(t.TempDir(), "out.env"), false)
			return err
		},
	}
	for _, c := range []struct {
		name string
		as   operator
		says []string
	}{
		{"no operator", carol, []string{
			envPath("coop", "prod", app) + ": your age identity cannot decrypt it",
			"it is encrypted to alice;",
			"your identity (carol's test key) is " + carol.recipient(),
			"ask one of them to run `meta operator add NAME --age " + carol.recipient() + "`",
		}},
		{"an operator who is no reader", bob, []string{
			envPath("coop", "prod", app) + ": your age identity cannot decrypt it",
			"it is encrypted to alice;",
			"your identity (bob's test key) is " + bob.recipient(),
			"you are operator bob, but not among its readers: ask one of them to give you access (meta access set) or to run `meta env rekey` if meta.yaml already does",
		}},
	} {
		for op, do := range operations {
			t.Run(c.name+"/"+op, func(t *testing.T) {
				before := headOf(t, s)
				err := do(as(s, c.as))
				if !errors.Is(err, sealed.ErrNotRecipient) {
					t.Fatalf("%v is not ErrNotRecipient", err)
				}
				for _, want := range c.says {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error\n%v\ndoes not say\n%s", err, want)
					}
				}
				if strings.Contains(err.Error(), alice.recipient()) {
					t.Errorf("the error names alice by key, not by name: %v", err)
				}
				assertUnwritten(t, s, before)
			})
		}
	}
}

// A rekey re-encrypts only the files whose readers change, so it needs to
// open only those; one that meets a file the operator cannot decrypt
// refuses as a whole, naming the file: meta.yaml is not changed either.
func TestRekeyRefusesWhatItCannotOpen(t *testing.T) {
	alice, bob, carol := newOperator(t, "alice"), newOperator(t, "bob"), newOperator(t, "carol")
	for _, c := range []struct {
		name string
		do   func(e *envs.Envs) (*store.Written, error)
		// ok: it needs none of the files bob cannot read.
		ok bool
	}{
		{"access set giving bob coop/prod", func(e *envs.Envs) (*store.Written, error) {
			return e.SetAccess(ctx, "coop/prod", []string{"alice", "bob"}, envs.Note{})
		}, false},
		{"access rm of the coop/prod rule", func(e *envs.Envs) (*store.Written, error) { return e.RemoveAccess(ctx, "coop/prod", envs.Note{}) }, false},
		{"forced rekey", func(e *envs.Envs) (*store.Written, error) {
			return e.Rekey(ctx, "env rekey", envs.Note{}, []string{app, staging}, nil)
		}, false},
		{"operator add, which coop/prod's rule keeps out", func(e *envs.Envs) (*store.Written, error) {
			return e.AddOperator(ctx, carol.config(), envs.Note{})
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := twoApps(t, alice, bob)
			if _, err := as(s, alice).SetAccess(ctx, "coop/prod", []string{"alice"}, envs.Note{}); err != nil {
				t.Fatal(err)
			}
			before := headOf(t, s)
			prod := sealedFile(t, s, envPath("coop", "prod", app))
			w, err := c.do(as(s, bob))
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				if got := headFiles(t, s); !slices.Equal(got, sortedCopy([]string{config.File, envPath("coop", "staging", staging), w.Paths[0]})) {
					t.Errorf("the commit holds %v, want meta.yaml and staging's file", got)
				}
				if string(sealedFile(t, s, envPath("coop", "prod", app))) != string(prod) {
					t.Error("coop/prod's file was re-encrypted")
				}
				if _, err := openAs(t, s, carol, staging); err != nil {
					t.Errorf("carol cannot open staging: %v", err)
				}
				return
			}
			if !errors.Is(err, sealed.ErrNotRecipient) || !strings.Contains(err.Error(), "cannot re-encrypt every env file, so nothing was changed") || !strings.Contains(err.Error(), envPath("coop", "prod", app)) {
				t.Fatalf("bob's %s: %v", c.name, err)
			}
			if strings.Contains(err.Error(), envPath("coop", "staging", staging)) {
				t.Errorf("the error names a file bob can read: %v", err)
			}
			assertUnwritten(t, s, before)
		})
	}
}

// Operator and access changes meta.yaml refuses write nothing.
func TestRefusedOperatorChangesWriteNothing(t *testing.T) {
	alice, bob := newOperator(t, "alice"), newOperator(t, "bob")
	s := twoApps(t, alice)
	e := as(s, alice)
	for _, c := range []struct {
		name string
		do   func() error
		says string
	}{
		{"add a name taken", func() error {
			_, err := e.AddOperator(ctx, config.Operator{Name: "alice", Age: bob.recipient()}, envs.Note{})
			return err
		}, "exists already"},
		{"add a key taken", func() error {
			_, err := e.AddOperator(ctx, config.Operator{Name: "bob", Age: alice.recipient()}, envs.Note{})
			return err
		}, "has that age key already"},
		{"add a secret key", func() error {
			_, err := e.AddOperator(ctx, config.Operator{Name: "bob", Age: bob.id.String()}, envs.Note{})
			return err
		}, "that is an age secret key"},
		{"remove nobody", func() error { _, err := e.RemoveOperator(ctx, "bob", envs.Note{}); return err }, `no operator is named "bob"`},
		{"access for nobody", func() error { _, err := e.SetAccess(ctx, "coop/prod", []string{"bob"}, envs.Note{}); return err }, `no operator is named "bob"`},
		{"remove a rule not there", func() error { _, err := e.RemoveAccess(ctx, "coop/prod", envs.Note{}); return err }, "no access rule for coop/prod"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := headOf(t, s)
			err := c.do()
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("%v, want it to say %q", err, c.says)
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Errorf("the error quotes the secret key")
			}
			assertUnwritten(t, s, before)
		})
	}
}
