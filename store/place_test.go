package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
