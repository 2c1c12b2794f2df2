package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// A remote that sends the commit of a new event without its record file
// (an upload-pack that leaves every file out of its packs, a pack git's
// fetch-pack takes without a word) fails the sync with ErrSync and
// gitrepo.ErrIncomplete: the clone's head and its remote-tracking ref stay
// where they were, and once the remote sends everything the next sync takes
// the event in.
func TestSyncRefusesARemoteThatWithholdsFiles(t *testing.T) {
	remote := bareRemote(t)
	a := join(t, remote)
	mustAppend(t, a, deploy("a.example.com", "1.0.0"))
	b := join(t, remote)
	mustAppend(t, b, upgrade("a.example.com", "1.1.0"))
	if _, err := a.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b, upgrade("a.example.com", "1.2.0"))

	dir := t.TempDir()
	hook, wrapper := filepath.Join(dir, "hook"), filepath.Join(dir, "upload-pack")
	os.WriteFile(hook, []byte("#!/bin/sh\nexec \"$@\" --filter=blob:none\n"), 0o755)
	os.WriteFile(wrapper, []byte("#!/bin/sh\nexec git -c uploadpack.packObjectsHook="+hook+" upload-pack \"$@\"\n"), 0o755)
	git(t, a.Root(), "config", "remote.origin.uploadpack", wrapper)
	tracking := git(t, a.Root(), "rev-parse", "refs/remotes/origin/main")

	_, err := a.Sync(ctx, SyncOptions{})
	if !errors.Is(err, ErrSync) || !errors.Is(err, gitrepo.ErrIncomplete) {
		t.Fatalf("sync with a remote that withholds files: %v", err)
	}
	t.Log(err)
	if h, _ := a.Head("a.example.com"); h.Version != "1.1.0" {
		t.Fatalf("a took in what it could not check: %+v", h)
	}
	if got := git(t, a.Root(), "rev-parse", "refs/remotes/origin/main"); got != tracking {
		t.Fatalf("the tracking ref moved to %s (was %s)", got, tracking)
	}

	git(t, a.Root(), "config", "--unset", "remote.origin.uploadpack")
	if _, err := a.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if h, _ := a.Head("a.example.com"); h.Version != "1.2.0" {
		t.Fatalf("after the remote was whole again a sees %+v", h)
	}
	git(t, a.Root(), "fsck", "--connectivity-only", "--no-progress")
}
