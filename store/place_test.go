package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

// An app's first event goes where meta.yaml says after the pull that
// starts the append, not where the clone's older copy said (bug B).
func TestAppendPlacesNewAppsWithTheDefaultsThePullBrought(t *testing.T) {
	remote := bareRemote(t)
	alice := join(t, remote)
	bob := join(t, remote)
	if _, err := bob.Head("a.example.com"); err == nil {
		t.Fatal("the log should be empty")
	}
	// Alice moves the log's defaults to another project and env, with git.
	cfg := filepath.Join(alice.Root(), config.File)
	data, _ := os.ReadFile(cfg)
	data = []byte(strings.NewReplacer("project: coop", "project: coop2", "env: prod", "env: staging").Replace(string(data)))
	os.WriteFile(cfg, data, 0o644)
	git(t, alice.Root(), "commit", "-qam", "new defaults")
	git(t, alice.Root(), "push", "-q", "origin", "main")

	// Bob's clone opened before the change; his append pulls it first.
	out := mustAppend(t, bob, deploy("a.example.com", "1.0.0"))
	if a := out.Event.GetAddress(); a.GetProject() != "coop2" || a.GetEnv() != "staging" {
		t.Fatalf("the new app went to %s/%s, want coop2/staging", a.GetProject(), a.GetEnv())
	}
}

// A hand edit of meta.yaml that is not committed neither steers a write
// nor is swept into one: writes read meta.yaml as committed, and a change
// of meta.yaml refuses to replace the edit (review F5).
func TestUncommittedMetaYAMLEditsAreNotUsedNorCommitted(t *testing.T) {
	s := newLog(t)
	cfg := filepath.Join(s.Root(), config.File)
	data, _ := os.ReadFile(cfg)
	edited := strings.Replace(string(data), "project: coop", "project: handedit", 1)
	os.WriteFile(cfg, []byte(edited), 0o644)
	out := mustAppend(t, s, deploy("u.example.com", "1.0.0"))
	if p := out.Event.GetAddress().GetProject(); p != "coop" {
		t.Fatalf("the new app went to project %s, from an uncommitted edit", p)
	}
	_, err := s.Write(ctx, alice, time.Now(), AppendOptions{Offline: true}, func(tx *Tx) error {
		return tx.PutConfig(tx.Config())
	})
	if !errors.Is(err, ErrUncommitted) || !strings.Contains(err.Error(), config.File) {
		t.Fatalf("a meta.yaml change over a hand edit: %v", err)
	}
	if got, _ := os.ReadFile(cfg); string(got) != edited {
		t.Fatalf("the hand edit is gone: %q", got)
	}
	if got := git(t, s.Root(), "show", "HEAD:"+config.File); strings.Contains(got, "handedit") {
		t.Fatalf("the hand edit was committed")
	}
}

// A meta.yaml the remote cannot have (not YAML, against its schema, or
// deleted) is taken in and quarantined: this clone, and one that joins
// later, go on with the last valid meta.yaml, appends and reads work, and
// once the remote is mended everything is as before (review F3).
func TestBadMetaYAMLFromTheRemoteBricksNoClone(t *testing.T) {
	for name, bad := range map[string]func(t *testing.T, dir string){
		"not yaml": func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, config.File), []byte("project: [unclosed\n"), 0o644)
		},
		"against its schema": func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, config.File), []byte("version: 1\nsync_cooldown: forever\n"), 0o644)
		},
		"deleted": func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, config.File)) },
	} {
		t.Run(name, func(t *testing.T) {
			remote := bareRemote(t)
			mine := join(t, remote)
			mustAppend(t, mine, deploy("a.example.com", "1.0.0"))
			bob := t.TempDir()
			git(t, bob, "clone", "-q", remote, ".")
			good, _ := os.ReadFile(filepath.Join(bob, config.File))
			bad(t, bob)
			git(t, bob, "add", "-A")
			git(t, bob, "commit", "-qm", "break meta.yaml")
			breaking := git(t, bob, "rev-parse", "HEAD")
			git(t, bob, "push", "-q", "origin", "main")

			if out := mustAppend(t, mine, deploy("a.example.com", "2.0.0")); !out.Pushed {
				t.Fatalf("append over a broken remote meta.yaml not pushed: %v", out.Warnings)
			}
			if mine.Config().Project != "coop" {
				t.Fatalf("config = %+v, want the last valid one", mine.Config())
			}
			q, err := mine.Quarantine(ctx, false)
			if err != nil || len(q) != 1 || q[0].Commit != breaking || q[0].Problems[0].Path != config.File {
				t.Fatalf("quarantine = %+v, %v", q, err)
			}
			if h, err := mine.Head("a.example.com"); err != nil || h.Version != "2.0.0" {
				t.Fatalf("head: %+v, %v", h, err)
			}
			if reopened, err := Open(mine.Root()); err != nil {
				t.Fatalf("the clone no longer opens: %v", err)
			} else {
				reopened.Close()
			}
			// A newcomer joins with the last valid meta.yaml.
			carol, err := Join(ctx, filepath.Join(t.TempDir(), "carol"), JoinOptions{URL: remote})
			if err != nil {
				t.Fatalf("join of the log: %v", err)
			}
			if h, err := carol.Head("a.example.com"); err != nil || h.Version != "2.0.0" || carol.Config().Project != "coop" {
				t.Fatalf("carol's head: %+v, %v, config %+v", h, err, carol.Config())
			}
			git(t, bob, "pull", "-q", "--ff-only", "origin", "main")
			os.WriteFile(filepath.Join(bob, config.File), good, 0o644)
			git(t, bob, "add", "-A")
			git(t, bob, "commit", "-qm", "mend meta.yaml")
			git(t, bob, "push", "-q", "origin", "main")
			if out := mustAppend(t, mine, deploy("a.example.com", "3.0.0")); !out.Pushed {
				t.Fatalf("not pushed after the mend: %v", out.Warnings)
			}
			assertClean(t, mine.Root())
		})
	}
}

// repair puts meta.yaml back as its last valid commit left it, and a
// record a pushed commit deleted back as first written, in one commit that
// breaks no rule; every clone then agrees.
func TestRepairMendsWhatPushedCommitsBroke(t *testing.T) {
	remote := bareRemote(t)
	mine := join(t, remote)
	out := mustAppend(t, mine, deploy("a.example.com", "1.0.0"))
	bob := t.TempDir()
	git(t, bob, "clone", "-q", remote, ".")
	good, _ := os.ReadFile(filepath.Join(bob, config.File))
	os.WriteFile(filepath.Join(bob, config.File), []byte("project: [unclosed\n"), 0o644)
	git(t, bob, "rm", "-q", out.Path)
	git(t, bob, "commit", "-qam", "break things")
	git(t, bob, "push", "-q", "origin", "main")
	if _, err := mine.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := mine.Repair(ctx, alice, false)
	if err != nil || !r.Pushed || len(r.Dropped) != 0 || len(r.Mended) != 2 {
		t.Fatalf("repair = %+v, %v", r, err)
	}
	if got := git(t, mine.Root(), "show", "HEAD:"+config.File); got+"\n" != string(good) {
		t.Fatalf("meta.yaml = %q", got)
	}
	if _, err := os.Stat(filepath.Join(mine.Root(), out.Path)); err != nil {
		t.Fatalf("the record is not back: %v", err)
	}
	// The repair commit is clean: only the one commit stays quarantined.
	if q, _ := mine.Quarantine(ctx, true); len(q) != 1 || q[0].Subject != "break things" {
		t.Fatalf("quarantine = %+v", q)
	}
	if _, err := mine.Repair(ctx, alice, false); !errors.Is(err, ErrNoChange) {
		t.Fatalf("a second repair: %v", err)
	}
	assertClean(t, mine.Root())
}

// A new app's placement says why it goes where it goes, in the line every
// command that starts an app's log prints; an app the log knows is no
// news.
func TestPlacementSaysWhyANewAppGoesThere(t *testing.T) {
	s := newLog(t)
	cfg := filepath.Join(s.Root(), config.File)
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(data, "servers:\n  s1.example.com: staging\n  s2.example.com: clients/edge\n"...), 0o644)
	git(t, s.Root(), "commit", "-qam", "map abra servers")
	tests := []struct{ app, project, env, server, want string }{
		{"a.example.com", "", "", "", "in project coop, env prod (from meta.yaml)"},
		{"b.example.com", "p", "e", "s1.example.com", "in project p, env e (from the command line)"},
		{"p/e/c.example.com", "", "", "s1.example.com", "in project p, env e (from the command line)"},
		{"d.example.com", "", "qa", "", "in project coop, env qa (project from meta.yaml, env from the command line)"},
		{"e.example.com", "", "", "s1.example.com", "in project coop, env staging (from servers: in meta.yaml for abra server s1.example.com)"},
		{"f.example.com", "", "", "s2.example.com", "in project clients, env edge (from servers: in meta.yaml for abra server s2.example.com)"},
		{"g.example.com", "", "", "s3.example.com", "in project coop, env s3.example.com (project from meta.yaml, env from abra server s3.example.com)"},
	}
	for _, tt := range tests {
		t.Run(tt.app, func(t *testing.T) {
			ev := deploy(tt.app, "1.0.0")
			ev.Address.Project, ev.Address.Env = tt.project, tt.env
			out, err := s.Append(ctx, ev, alice, time.Now(), AppendOptions{Offline: true, Server: tt.server})
			if err != nil {
				t.Fatal(err)
			}
			domain := tt.app[strings.LastIndex(tt.app, "/")+1:]
			if want := "new app " + domain + " " + tt.want; len(out.NewApps) != 1 || out.NewApps[0].String() != want {
				t.Fatalf("NewApps = %v, want [%s]", out.NewApps, want)
			}
			if a := out.Event.GetAddress(); a.GetProject() != out.NewApps[0].Project || a.GetEnv() != out.NewApps[0].Env {
				t.Errorf("the event went to %s/%s, the placement says %s", a.GetProject(), a.GetEnv(), out.NewApps[0].Address)
			}
			out, err = s.Append(ctx, deploy(domain, "1.1.0"), alice, time.Now(), AppendOptions{Offline: true, Server: "s2.example.com"})
			if err != nil || len(out.NewApps) != 0 {
				t.Fatalf("a second event: NewApps %v, %v", out.NewApps, err)
			}
		})
	}
}
