package envs_test

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// Import seals abra's file into the log in one commit with its env event;
// Open gives back the same keys, order and comments.
func TestImportThenOpenRoundTrips(t *testing.T) {
	alice := newOperator(t, "alice")
	s := newLog(t, alice)
	before := headOf(t, s)
	res, err := as(s, alice).Import(ctx, &metav1.Address{App: app}, parse(t, appEnv), envs.Note{Message: "from abra"})
	if err != nil {
		t.Fatal(err)
	}
	p := envPath("coop", "prod", app)

	if git(t, s.Root(), "rev-parse", "HEAD~1") != before || res.Commit != headOf(t, s) {
		t.Fatal("import did not make one commit on top of the last")
	}
	if len(res.Events) != 1 || len(res.Paths) != 1 {
		t.Fatalf("import recorded %d events at %v, want one", len(res.Events), res.Paths)
	}
	if got, want := headFiles(t, s), []string{res.Paths[0], p}; !slices.Equal(got, sortedCopy(want)) {
		t.Fatalf("the commit holds %v, want the env file and the one record %v", got, want)
	}
	assertClean(t, s.Root())

	data := sealedFile(t, s, p)
	if !sealed.IsSealed(data) || !bytes.Contains(data, []byte("\nsops_mac=")) {
		t.Fatalf("committed file is not sops:\n%s", data)
	}
	for _, k := range []string{"DOMAIN", "SMTP_PASSWORD", "SECRET_KEY_BASE_VERSION"} {
		if !regexp.MustCompile(`(?m)^` + k + `=ENC\[AES256_GCM,`).Match(data) {
			t.Errorf("%s is not ENC[...] in the committed file", k)
		}
	}
	if bytes.Contains(data, []byte("PLANT-import")) {
		t.Error("the committed file holds a plain value")
	}
	if clear := sealed.ClearKeys(data); len(clear) != 0 {
		t.Errorf("keys in clear: %v", clear)
	}
	if got := sealed.Recipients(data); !slices.Equal(got, []string{alice.recipient()}) {
		t.Errorf("sealed to %v, want alice only", got)
	}

	ev := res.Events[0]
	ch := ev.GetEnv()
	if ev.GetKind() != metav1.Kind_KIND_ENV || ch.GetReason() != "import" || ev.GetMessage() != "from abra" {
		t.Errorf("event: kind %v, reason %q, message %q", ev.GetKind(), ch.GetReason(), ev.GetMessage())
	}
	if ev.GetEnvDigest() != sealed.Digest(data) {
		t.Errorf("event digest %s, committed file %s", ev.GetEnvDigest(), sealed.Digest(data))
	}
	if !slices.Equal(ch.GetAdded(), []string{"DOMAIN", "SECRET_KEY_BASE_VERSION", "SMTP_PASSWORD"}) || len(ch.GetChanged())+len(ch.GetRemoved()) != 0 {
		t.Errorf("event names %+v", ch)
	}
	if !slices.Equal(ch.GetRecipients(), []string{"alice"}) {
		t.Errorf("event recipients %v", ch.GetRecipients())
	}
	if res.Address.Project != "coop" || res.Address.Env != "prod" || res.Address.App != app {
		t.Errorf("placed at %+v", res.Address)
	}

	f, digest, addr, err := as(s, alice).Open(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Bytes()) != appRoundTrip {
		t.Errorf("Open gives\n%s\nwant\n%s", f.Bytes(), appRoundTrip)
	}
	if digest != sealed.Digest(data) || addr != res.Address {
		t.Errorf("Open: digest %s at %+v", digest, addr)
	}
	if v, _ := f.Get("SECRET_KEY_BASE_VERSION"); v != "v1 # length=128" {
		t.Errorf("a value with a hash sign became %q", v)
	}
	assertNoLeak(t, []string{"PLANT-import-7f3a9c"}, s.Root())
}

// Set and Unset each make one commit whose env event names the keys added,
// changed and removed. No value, set through any path, reaches a git
// object or meta's own files.
func TestSetAndUnsetNameKeysNeverValues(t *testing.T) {
	alice := newOperator(t, "alice")
	s := newLog(t, alice)
	importApp(t, s, alice, &metav1.Address{App: app}, appEnv)
	e := as(s, alice)
	plants := []string{"PLANT-import-7f3a9c"}
	set := func(kvs ...envs.KV) func() (*envs.Result, error) {
		cmd := []string{"meta", "env", "set", app}
		for _, kv := range kvs {
			cmd = append(cmd, kv.Key+"="+kv.Value)
			plants = append(plants, kv.Value)
		}
		return func() (*envs.Result, error) {
			return e.Set(ctx, app, kvs, envs.Note{Message: "rotate", Command: cmd})
		}
	}
	unset := func(keys ...string) func() (*envs.Result, error) {
		return func() (*envs.Result, error) {
			return e.Unset(ctx, app, keys, envs.Note{Command: append([]string{"meta", "env", "unset", app}, keys...)})
		}
	}
	for _, c := range []struct {
		name                    string
		do                      func() (*envs.Result, error)
		reason                  string
		added, changed, removed []string
		keys                    []string // the file's keys afterwards, in order
	}{
		{"set adds a key", set(envs.KV{Key: "API_TOKEN", Value: "PLANT-add-91c5aa"}), "set",
			[]string{"API_TOKEN"}, nil, nil, []string{"DOMAIN", "SMTP_PASSWORD", "SECRET_KEY_BASE_VERSION", "API_TOKEN"}},
		{"set changes a key where it stands", set(envs.KV{Key: "SMTP_PASSWORD", Value: "PLANT-change-4e7b12"}), "set",
			nil, []string{"SMTP_PASSWORD"}, nil, []string{"DOMAIN", "SMTP_PASSWORD", "SECRET_KEY_BASE_VERSION", "API_TOKEN"}},
		{"set adds and changes", set(envs.KV{Key: "DOMAIN", Value: "PLANT-domain-c0ffee"}, envs.KV{Key: "DB_PASSWORD", Value: "PLANT-db-d15ea5e"}), "set",
			[]string{"DB_PASSWORD"}, []string{"DOMAIN"}, nil, []string{"DOMAIN", "SMTP_PASSWORD", "SECRET_KEY_BASE_VERSION", "API_TOKEN", "DB_PASSWORD"}},
		{"set a value with spaces and an equals sign", set(envs.KV{Key: "API_TOKEN", Value: "PLANT spaced=0ddba11"}), "set",
			nil, []string{"API_TOKEN"}, nil, []string{"DOMAIN", "SMTP_PASSWORD", "SECRET_KEY_BASE_VERSION", "API_TOKEN", "DB_PASSWORD"}},
		{"unset removes a key", unset("API_TOKEN"), "unset",
			nil, nil, []string{"API_TOKEN"}, []string{"DOMAIN", "SMTP_PASSWORD", "SECRET_KEY_BASE_VERSION", "DB_PASSWORD"}},
		{"unset removes two keys", unset("DB_PASSWORD", "DOMAIN"), "unset",
			nil, nil, []string{"DB_PASSWORD", "DOMAIN"}, []string{"SMTP_PASSWORD", "SECRET_KEY_BASE_VERSION"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := headOf(t, s)
			res, err := c.do()
			if err != nil {
				t.Fatal(err)
			}
			if git(t, s.Root(), "rev-parse", "HEAD~1") != before {
				t.Fatal("not one commit on top of the last")
			}
			p := envPath("coop", "prod", app)
			if len(res.Paths) != 1 || !slices.Equal(headFiles(t, s), sortedCopy([]string{p, res.Paths[0]})) {
				t.Fatalf("the commit holds %v, want the env file and one record %v", headFiles(t, s), res.Paths)
			}
			assertClean(t, s.Root())
			ch := res.Events[0].GetEnv()
			if ch.GetReason() != c.reason || !slices.Equal(ch.GetAdded(), c.added) || !slices.Equal(ch.GetChanged(), c.changed) || !slices.Equal(ch.GetRemoved(), c.removed) {
				t.Errorf("event: reason %q, added %v, changed %v, removed %v", ch.GetReason(), ch.GetAdded(), ch.GetChanged(), ch.GetRemoved())
			}
			if !slices.Equal(res.Changes.Added, nonNil(c.added)) || !slices.Equal(res.Changes.Changed, nonNil(c.changed)) || !slices.Equal(res.Changes.Removed, nonNil(c.removed)) {
				t.Errorf("result changes %+v", res.Changes)
			}
			for _, arg := range res.Events[0].GetCommand()[4:] {
				if k, v, ok := strings.Cut(arg, "="); ok && v != "<redacted>" {
					t.Errorf("the recorded command holds the value of %s", k)
				}
			}
			f, err := openAs(t, s, alice, app)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Keys(), c.keys) {
				t.Errorf("keys afterwards %v, want %v", f.Keys(), c.keys)
			}
			if !strings.HasPrefix(string(f.Bytes()), "## Domain\n") || !strings.Contains(string(f.Bytes()), "\n#COMMENTED=out\n") {
				t.Errorf("comments lost:\n%s", f.Bytes())
			}
		})
	}
	f, _ := openAs(t, s, alice, app)
	if v, _ := f.Get("SMTP_PASSWORD"); v != "PLANT-change-4e7b12" {
		t.Errorf("SMTP_PASSWORD is %q", v)
	}
	evs, err := s.Log(app, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if strings.Contains(ev.String(), "PLANT") {
			t.Errorf("event %s holds a value: %v", ev.GetId(), ev)
		}
	}
	assertNoLeak(t, plants, s.Root())
}

// A refused change writes nothing: no commit, a clean work tree, and the
// env as it was.
func TestRefusedChangesWriteNothing(t *testing.T) {
	alice := newOperator(t, "alice")
	s := newLog(t, alice)
	importApp(t, s, alice, &metav1.Address{App: app}, appEnv)
	appendDeploy(t, s, "deployed.example.org") // events, but no env file
	e := as(s, alice)
	for _, c := range []struct {
		name string
		do   func() error
		is   error
		says string
	}{
		{"unset of a missing key", func() error { _, err := e.Unset(ctx, app, []string{"NOPE"}, envs.Note{}); return err },
			nil, "not set in the env of app.example.org: NOPE"},
		{"unset of a present and a missing key", func() error {
			_, err := e.Unset(ctx, app, []string{"DOMAIN", "NOPE", "ALSO_NOPE"}, envs.Note{})
			return err
		}, nil, "not set in the env of app.example.org: NOPE, ALSO_NOPE"},
		{"set on an app the log does not know", func() error {
			_, err := e.Set(ctx, "new.example.org", []envs.KV{{Key: "A", Value: "1"}}, envs.Note{})
			return err
		}, store.ErrNoEnv, "meta env import"},
		{"unset on an app the log does not know", func() error {
			_, err := e.Unset(ctx, "new.example.org", []string{"A"}, envs.Note{})
			return err
		}, store.ErrNoEnv, "new.example.org has none in the log"},
		{"set on an app with events but no env", func() error {
			_, err := e.Set(ctx, "deployed.example.org", []envs.KV{{Key: "A", Value: "1"}}, envs.Note{})
			return err
		}, store.ErrNoEnv, "deployed.example.org has none in the log"},
		{"set of the value there already", func() error {
			_, err := e.Set(ctx, app, []envs.KV{{Key: "DOMAIN", Value: "app.example.org"}}, envs.Note{})
			return err
		}, store.ErrNoChange, ""},
		{"set of a bad key", func() error {
			_, err := e.Set(ctx, app, []envs.KV{{Key: "BAD KEY", Value: "1"}}, envs.Note{})
			return err
		},
			dotenv.ErrKey, "bad key"},
		{"set of a key sops keeps in clear", func() error {
			_, err := e.Set(ctx, app, []envs.KV{{Key: "OK", Value: "1"}, {Key: "KEY_unencrypted", Value: "1"}}, envs.Note{})
			return err
		}, dotenv.ErrKey, `"_unencrypted" unencrypted`},
		{"set of a value with a line break", func() error {
			_, err := e.Set(ctx, app, []envs.KV{{Key: "A", Value: "PLANT-line\nbreak"}}, envs.Note{})
			return err
		}, dotenv.ErrValue, "line break"},
		{"an import of what is there already", func() error {
			_, err := e.Import(ctx, &metav1.Address{App: app}, parse(t, appRoundTrip), envs.Note{})
			return err
		},
			store.ErrNoChange, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := headOf(t, s)
			err := c.do()
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
			if f, err := openAs(t, s, alice, app); err != nil || string(f.Bytes()) != appRoundTrip {
				t.Errorf("the env changed:\n%s%v", f.Bytes(), err)
			}
		})
	}
	if _, _, err := s.EnvFile("deployed.example.org"); !errors.Is(err, store.ErrNoEnv) {
		t.Errorf("the refused set made deployed.example.org an env: %v", err)
	}
}

// With no operator meta.yaml lets read the env, there is nobody to seal to.
func TestImportWithoutOperatorsRefuses(t *testing.T) {
	s := newLog(t)
	before := headOf(t, s)
	_, err := as(s, newOperator(t, "alice")).Import(ctx, &metav1.Address{App: app}, parse(t, appEnv), envs.Note{})
	if !errors.Is(err, sealed.ErrNoOperators) || !strings.Contains(err.Error(), "coop/prod") || !strings.Contains(err.Error(), "meta operator add") {
		t.Fatalf("import without operators: %v", err)
	}
	assertUnwritten(t, s, before)
}

// Note.Expect is the optimistic check of a change made on a copy: a digest
// other than the file's refuses with ErrConflict and writes nothing.
func TestExpectRefusesAStaleDigest(t *testing.T) {
	alice := newOperator(t, "alice")
	s := newLog(t, alice)
	first := importApp(t, s, alice, &metav1.Address{App: app}, appEnv)
	e := as(s, alice)
	second, err := e.Set(ctx, app, []envs.KV{{Key: "LATER", Value: "1"}}, envs.Note{})
	if err != nil {
		t.Fatal(err)
	}
	current := second.Events[0].GetEnvDigest()
	for _, c := range []struct {
		name   string
		expect string
		ok     bool
	}{
		{"the digest before the last change", first.Events[0].GetEnvDigest(), false},
		{"a digest no version had", "sha256:" + strings.Repeat("0", 64), false},
		{"the current digest", current, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := headOf(t, s)
			_, err := e.Set(ctx, app, []envs.KV{{Key: "EXPECTED", Value: c.name}}, envs.Note{Expect: c.expect})
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "changed since you read it") || !strings.Contains(err.Error(), sealed.ShortDigest(c.expect)) {
				t.Fatalf("set with a stale digest: %v", err)
			}
			assertUnwritten(t, s, before)
			if d, _, _ := s.EnvFile(app); sealed.Digest(d) != current {
				t.Error("the env file changed")
			}
		})
	}
}

func sortedCopy(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
