package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func TestCorruptRecordNamesFileAndCommit(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	ev := newEvent("a.example.com", "prod", time.Now())
	bad := record.Path(ev)
	commit := commitBytes(t, s, bad, []byte("this is not a record"))
	_, err := s.Head("a.example.com")
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, record.ErrCorrupt) {
		t.Fatalf("err = %v, want a CorruptError", err)
	}
	if ce.Path != bad || ce.Commit != commit || !strings.Contains(err.Error(), commit) {
		t.Fatalf("error names %s in %s, want %s in %s: %v", ce.Path, ce.Commit, bad, commit, err)
	}
	findings, err := s.Verify(ctx, nil)
	if err != nil || len(findings) != 1 || findings[0].Path != bad || findings[0].Commit != commit {
		t.Fatalf("verify = %v, %v", findings, err)
	}
}

func TestVerifyFindsRewrittenHistory(t *testing.T) {
	s := newLog(t)
	a := mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	b := mustAppend(t, s, deploy("b.example.com", "1.0.0"))
	if findings, err := s.Verify(ctx, nil); err != nil || len(findings) != 0 {
		t.Fatalf("clean log: %v, %v", findings, err)
	}
	// Someone edits one record and deletes another, and commits that.
	os.WriteFile(filepath.Join(s.Root(), a.Path), []byte("edited"), 0o644)
	git(t, s.Root(), "rm", "-q", b.Path)
	git(t, s.Root(), "commit", "-qam", "tidy up")
	// And puts a stray file where records live, and leaves one uncommitted.
	commitBytes(t, s, "projects/coop/prod/a.example.com/notes.txt", []byte("hi"))
	stray := newEvent("c.example.com", "prod", time.Now())
	data, _ := record.Marshal(stray)
	os.MkdirAll(filepath.Dir(filepath.Join(s.Root(), record.Path(stray))), 0o755)
	os.WriteFile(filepath.Join(s.Root(), record.Path(stray)), data, 0o644)

	findings, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		a.Path: "record modified",
		b.Path: "record deleted",
		"projects/coop/prod/a.example.com/notes.txt": "not of the form",
		record.Path(stray):                           "not committed",
	}
	if len(findings) != len(want) {
		t.Fatalf("findings = %v", findings)
	}
	for _, f := range findings {
		if !strings.Contains(f.Problem, want[f.Path]) {
			t.Errorf("finding %v, want %q", f, want[f.Path])
		}
	}
}

func TestVerifyFindsRecordsDroppedByAMerge(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	git(t, s.Root(), "checkout", "-q", "-b", "side")
	dropped := mustAppend(t, s, upgrade("a.example.com", "1.1.0"))
	git(t, s.Root(), "checkout", "-q", "main")
	mustAppend(t, s, deploy("b.example.com", "1.0.0"))
	git(t, s.Root(), "merge", "-q", "-s", "ours", "-m", "keep mine", "side")
	merge := git(t, s.Root(), "rev-parse", "HEAD")
	findings, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || findings[0].Path != dropped.Path || findings[0].Commit != merge || findings[0].Problem != "record deleted" {
		t.Fatalf("findings = %+v", findings)
	}
}
