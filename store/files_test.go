package store

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/spf13/afero"
	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newEvent(app, env string, at time.Time) *metav1.Event {
	id := record.NewID(at)
	idTime, _ := record.IDTime(id)
	return &metav1.Event{
		Format:  record.FormatVersion,
		Id:      id,
		Time:    timestamppb.New(idTime),
		Actor:   &metav1.Actor{Name: "Alice"},
		Address: &metav1.Address{Project: "coop", Env: env, App: app},
		Kind:    metav1.Kind_KIND_DEPLOY,
		Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
		Version: "1.0.0",
	}
}

func TestFilesWriteListRead(t *testing.T) {
	f := NewFiles(afero.NewMemMapFs())
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	a := newEvent("a.example.com", "prod", now)
	b := newEvent("a.example.com", "prod", now.AddDate(0, 1, 0))
	c := newEvent("b.example.com", "staging", now)
	for _, ev := range []*metav1.Event{a, b, c} {
		if _, _, err := f.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	apps, _ := f.Apps()
	if len(apps) != 2 || apps[0].App != "a.example.com" || apps[1].Env != "staging" {
		t.Fatalf("apps = %v", apps)
	}
	paths, _ := f.RecordPaths(projects.Address{Project: "coop", Env: "prod", App: "a.example.com"})
	if len(paths) != 2 || paths[0] != record.Path(a) || paths[1] != record.Path(b) {
		t.Fatalf("paths = %v (want one per month)", paths)
	}
	data, err := f.Read(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := record.Unmarshal(data); err != nil || got.GetId() != a.GetId() {
		t.Fatalf("read back %v, %v", got, err)
	}
	found, _ := f.Find("b.example.com")
	if len(found) != 1 || found[0].Env != "staging" {
		t.Fatalf("find = %v", found)
	}
}

func TestFilesNeverReplaceOrWriteInvalid(t *testing.T) {
	fsys := afero.NewMemMapFs()
	f := NewFiles(fsys)
	ev := newEvent("a.example.com", "prod", time.Now())
	if _, _, err := f.Write(ev); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Write(ev); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write = %v, want ErrExist", err)
	}
	bad := newEvent("a.example.com", "prod", time.Now())
	bad.Address.App = "../../etc"
	if _, _, err := f.Write(bad); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("invalid write = %v", err)
	}
	// Only the one valid record exists; no temporary file is left over.
	var files []string
	afero.Walk(fsys, projects.Root, func(p string, fi fs.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("files = %v", files)
	}
}

func TestCacheSurvivesDamage(t *testing.T) {
	fsys := afero.NewMemMapFs()
	c := NewCache(fsys)
	a := projects.Address{Project: "coop", Env: "prod", App: "a.example.com"}
	recs := map[string][]byte{"p1": []byte("one"), "p2": []byte("two"), "p3": []byte("three")}
	c.Store(a, []string{"p1", "p2", "p3"}, recs)
	if got := c.Load(a); len(got) != 3 || string(got["p2"]) != "two" {
		t.Fatalf("load = %v", got)
	}
	// Flip a byte inside the second frame: the first survives, the rest is
	// dropped and will be read from the records again.
	name := c.file(a)
	data, _ := afero.ReadFile(fsys, name)
	data[len(cacheMagic)+12] ^= 0xff
	afero.WriteFile(fsys, name, data, 0o644)
	if got := c.Load(a); len(got) != 1 || string(got["p1"]) != "one" {
		t.Fatalf("damaged load = %v", got)
	}
	afero.WriteFile(fsys, name, []byte("garbage"), 0o644)
	if got := c.Load(a); len(got) != 0 {
		t.Fatalf("garbage load = %v", got)
	}
}
