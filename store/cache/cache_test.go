package cache

import (
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
	// Flip a byte inside the second frame: the first survives, the rest is
	// dropped and will be read from the records again.
	name := c.file(app)
	data, _ := afero.ReadFile(fsys, name)
	data[len(magic)+20+1+3+4+5] ^= 0xff
	afero.WriteFile(fsys, name, data, 0o644)
	if got := c.Records(app); len(got) != 1 || string(got[ids[0]]) != "one" {
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
}
