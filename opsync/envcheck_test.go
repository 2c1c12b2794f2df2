package opsync

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

// A deploy names the log's sealed env as the one it ran with only when
// abra's env file says the same, apart from the version abra writes into
// it; else it says it ran with a local env and names no digest. Real age
// keys, the real meta-seal, real sops files in a real log.
func TestDeployRecordsTheEnvItRanWith(t *testing.T) {
	seal := sealed.Helper{Path: filepath.Join(t.TempDir(), sealed.HelperName)}
	if out, err := exec.Command("go", "build", "-o", seal.Path, "../cmd/meta-seal").CombinedOutput(); err != nil {
		t.Fatalf("build meta-seal: %v\n%s", err, out)
	}
	key := func() *age.X25519Identity {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	aliceKey, carolKey := key(), key()
	envsAs := func(w *world, id *age.X25519Identity) *envs.Envs {
		return &envs.Envs{Store: w.log, Helper: seal, Actor: alice, Now: time.Now,
			Identity: func() (sealed.Identity, error) {
				return sealed.Identity{Source: "test key", Text: id.String() + "\n"}, nil
			}}
	}
	// sealedEnv is abra's env file for the app as it was imported, at
	// 0.9.0; abra's file is at 1.0.0 when the deploy starts.
	const sealedEnv = "TYPE=" + recipe + ":0.9.0\nDOMAIN=" + domain + "\nSECRET_DB_PASSWORD_VERSION=v1\nSECRET_SMTP_PASSWORD_VERSION=v2 # length=32\n"
	for _, c := range []struct {
		name string
		// imported says the log holds sealedEnv; as is whose identity
		// meta exec decrypts with (nil: no OpenEnv at all).
		imported bool
		as       *age.X25519Identity
		// local changes abra's env file before the deploy.
		local func(w *world, p string)
		// matches says the deploy names the sealed env's digest; warns
		// is what meta tells the operator.
		matches bool
		warns   string
	}{
		{name: "the same env, at another version", imported: true, as: aliceKey, matches: true},
		{name: "the same env, stamped and quoted otherwise", imported: true, as: aliceKey, matches: true, local: func(w *world, p string) {
			write(t, p, "TYPE="+recipe+":1.0.0\nDOMAIN=\""+domain+"\"\nSECRET_DB_PASSWORD_VERSION=v1\nSECRET_SMTP_PASSWORD_VERSION='v2' # length=32\n# managed by meta\nOPERATOR_SYNC_VERSION=1.0.0\n", 0o600)
		}},
		{name: "a changed value and a key more", imported: true, as: aliceKey, local: func(w *world, p string) {
			write(t, p, "TYPE="+recipe+":1.0.0\nDOMAIN=PLANT-other.example.com\nSECRET_DB_PASSWORD_VERSION=v1\nSECRET_SMTP_PASSWORD_VERSION=v2 # length=32\nLOCAL=PLANT-1\n", 0o600)
		}, warns: "recorded as run with a local env: " + "%s differs from the log's env of " + domain + " in DOMAIN, LOCAL"},
		{name: "another modifier", imported: true, as: aliceKey, local: func(w *world, p string) {
			write(t, p, strings.Replace(sealedEnv, "length=32", "length=64", 1), 0o600)
		}, warns: "in SECRET_SMTP_PASSWORD_VERSION"},
		{name: "a file meta cannot compare", imported: true, as: aliceKey, local: func(w *world, p string) {
			write(t, p, sealedEnv+"DOMAIN=PLANT-twice\n", 0o600)
		}, warns: "meta could not compare %s with the log's env: %s line 5: not a dotenv file: DOMAIN is already set on line 2"},
		{name: "an operator who cannot decrypt it", imported: true, as: carolKey,
			warns: "meta could not read the log's env of " + domain + " to compare: "},
		{name: "no sealed env in the log", as: aliceKey},
		{name: "no way to decrypt", imported: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, nil)
			digest := ""
			if c.imported {
				e := envsAs(w, aliceKey)
				if _, err := e.AddOperator(ctx, config.Operator{Name: "alice", Age: aliceKey.Recipient().String()}, envs.Note{}); err != nil {
					t.Fatal(err)
				}
				f, err := dotenv.Parse("imported", []byte(sealedEnv))
				if err != nil {
					t.Fatal(err)
				}
				res, err := e.Import(ctx, &metav1.Address{App: domain}, f, envs.Note{})
				if err != nil {
					t.Fatal(err)
				}
				digest = res.Events[0].GetEnvDigest()
			}
			p := w.envFile(s1, domain, "1.0.0")
			if c.local != nil {
				c.local(w, p)
			}
			r := w.runner(Options{})
			if c.as != nil {
				r.OpenEnv = func(ctx context.Context, d string) (dotenv.File, string, error) {
					f, digest, _, err := envsAs(w, c.as).Open(ctx, d)
					return f, digest, err
				}
			}
			w.order("version", "1.1.0")
			res, err := r.Run(ctx, []string{w.abra, "app", "deploy", domain})
			if err != nil || res.Code != 0 || len(res.Recorded) != 1 {
				t.Fatalf("deploy: %+v, %v", res, err)
			}
			ev := res.Recorded[0]
			if c.matches {
				if ev.GetEnvDigest() != digest || digest == "" || ev.GetLocalEnv() {
					t.Errorf("recorded env %q, local %v; want the sealed env's %q", ev.GetEnvDigest(), ev.GetLocalEnv(), digest)
				}
			} else if ev.GetEnvDigest() != "" || !ev.GetLocalEnv() {
				t.Errorf("recorded env %q, local %v; want a local env and no digest", ev.GetEnvDigest(), ev.GetLocalEnv())
			}
			// What was recorded is what the log reads back, and folds.
			h := w.head(domain)
			if h.Deployed == nil || h.Deployed.LocalEnv == c.matches || h.Deployed.EnvDigest != ev.GetEnvDigest() {
				t.Errorf("head's deploy: %+v", h.Deployed)
			}
			if h.EnvChangedSinceDeploy {
				t.Error("the head says the env changed since the deploy: it did not, or the log cannot tell")
			}
			warned := strings.Join(w.warned(), "\n")
			want := c.warns
			if strings.Contains(want, "%s") {
				want = strings.ReplaceAll(want, "%s", p)
			}
			if want == "" && warned != "" || !strings.Contains(warned, want) {
				t.Errorf("warnings %q, want %q", warned, want)
			}
			if strings.Contains(warned, "PLANT") {
				t.Errorf("a warning shows a value: %q", warned)
			}
		})
	}
}
