package cache

import (
	"bytes"
	"testing"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

var app = projects.Address{Project: "coop", Env: "prod", App: "a.example.com"}

func TestRecordsSurviveDamage(t *testing.T) {
	fsys := afero.NewMemMapFs()
	c := New(fsys)
	recs := map[gitrepo.Hash][]byte{}
	var ids []gitrepo.Hash
	for _, r := range []string{"one", "two", "three"} {
		id := gitrepo.BlobID([]byte(r))
		ids, recs[id] = append(ids, id), []byte(r)
	}
	c.StoreRecords(app, ids, recs)
	if got := c.Records(app); len(got) != 3 || string(got[ids[1]]) != "two" {
		t.Fatalf("load = %v", got)
	}
	// Change a byte of the second record's content: it no longer hashes
	// to its id and is dropped (read from the repository again); the
	// others survive.
	name := c.file(app)
	data, _ := afero.ReadFile(fsys, name)
	second := len(magic) + 20 + 1 + 3 + 20 + 1
	data[second] ^= 0x01
	afero.WriteFile(fsys, name, data, 0o644)
	if got := c.Records(app); len(got) != 2 || string(got[ids[0]]) != "one" || got[ids[1]] != nil || string(got[ids[2]]) != "three" {
		t.Fatalf("damaged load = %v", got)
	}
	afero.WriteFile(fsys, name, []byte("garbage"), 0o644)
	if got := c.Records(app); len(got) != 0 {
		t.Fatalf("garbage load = %v", got)
	}
}

// A head is answered only for the tree it was folded from, by this fold.
func TestHeadIsKeyedByTree(t *testing.T) {
	c := New(afero.NewMemMapFs())
	tree := gitrepo.BlobID([]byte("a tree"))
	c.StoreHead(app, tree, &fold.Head{Domain: app.App, Version: "1.0.0"})
	if h, ok := c.Head(app, tree); !ok || h.Version != "1.0.0" {
		t.Fatalf("head = %v, %v", h, ok)
	}
	if _, ok := c.Head(app, gitrepo.BlobID([]byte("another tree"))); ok {
		t.Fatal("a head answered for another tree")
	}
	// A memo changed on disk is not believed (review F14).
	fsys := c.fs
	data, _ := afero.ReadFile(fsys, c.file(app)+".head")
	afero.WriteFile(fsys, c.file(app)+".head", bytes.Replace(data, []byte("1.0.0"), []byte("6.6.6"), 1), 0o644)
	if h, ok := c.Head(app, tree); ok {
		t.Fatalf("an edited memo answered %q", h.Version)
	}
}
