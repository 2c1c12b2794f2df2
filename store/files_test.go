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
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
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

// Reads list apps and records from the branch tip: one directory per app,
// one per month, one file per event.
func TestReadsListAppsAndRecordsByMonth(t *testing.T) {
	s := newLog(t)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	a := commitEvent(t, s, newEvent("a.example.com", "prod", now))
	b := commitEvent(t, s, newEvent("a.example.com", "prod", now.AddDate(0, 1, 0)))
	commitEvent(t, s, newEvent("b.example.com", "staging", now))
	tip, _ := s.repo.Head()
	apps, _ := s.apps(tip)
	if len(apps) != 2 || apps[0].App != "a.example.com" || apps[1].Env != "staging" {
		t.Fatalf("apps = %v", apps)
	}
	refs, _ := s.records(tip, projects.Address{Project: "coop", Env: "prod", App: "a.example.com"})
	if len(refs) != 2 || refs[0].path != record.Path(a) || refs[1].path != record.Path(b) {
		t.Fatalf("records = %v (want one per month)", refs)
	}
	data, err := s.recordBytes(refs[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := record.Unmarshal(data); err != nil || got.GetId() != a.GetId() {
		t.Fatalf("read back %v, %v", got, err)
	}
	found, _ := s.find(tip, "b.example.com")
	if len(found) != 1 || found[0].Env != "staging" {
		t.Fatalf("find = %v", found)
	}
}

// commitEvent commits ev as it is, through the commit path's last steps.
func commitEvent(t testing.TB, s *Store, ev *metav1.Event) *metav1.Event {
	t.Helper()
	data, err := record.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	c := &plannedCommit{files: []gitrepo.File{{Path: record.Path(ev), Data: data}}, msg: "test\n", actor: alice, when: time.Now(), events: []*metav1.Event{ev}}
	if err := s.commitRetrying(&Written{}, func(gitrepo.Hash) (*plannedCommit, error) { return c, nil }); err != nil {
		t.Fatal(err)
	}
	return ev
}

// A record is never replaced, an invalid one never written, and a write
// leaves no temporary file behind.
func TestRecordsNeverReplacedOrWrittenInvalid(t *testing.T) {
	s := newLog(t)
	ev := newEvent("a.example.com", "prod", time.Now())
	data, _ := record.Marshal(ev)
	if err := s.work.create(record.Path(ev), data); err != nil {
		t.Fatal(err)
	}
	if err := s.work.create(record.Path(ev), data); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write = %v, want ErrExist", err)
	}
	bad := deploy("../../etc", "1.0.0")
	if _, err := s.Append(ctx, bad, alice, time.Now(), AppendOptions{Offline: true}); !errors.Is(err, projects.ErrInvalidName) {
		t.Fatalf("invalid write = %v", err)
	}
	// Only the one valid record exists; no temporary file is left over.
	var files []string
	afero.Walk(s.work.fs, projects.Root, func(p string, fi fs.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("files = %v", files)
	}
}
