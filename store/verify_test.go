package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// A record of bytes that are no event, committed by hand, is left out of
// every read and quarantined with the commit that wrote it; the app's
// other events still fold, and verify names the file and the commit.
func TestCorruptRecordIsLeftOutAndNamed(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	ev := newEvent("a.example.com", "prod", time.Now())
	bad := record.Path(ev)
	commit := commitBytes(t, s, bad, []byte("this is not a record"))
	h, err := s.Head("a.example.com")
	if err != nil || h.Version != "1.0.0" {
		t.Fatalf("head = %+v, %v", h, err)
	}
	q, err := s.Quarantine(ctx, false)
	if err != nil || len(q) != 1 || q[0].Commit != commit || q[0].Problems[0].Path != bad || !strings.Contains(q[0].Problems[0].What, integrity.BadRecord) {
		t.Fatalf("quarantine = %+v, %v", q, err)
	}
	if _, err := s.Log("", 0); err != nil {
		t.Fatalf("log of every app: %v", err)
	}
	v, err := s.Verify(ctx, nil)
	if err != nil || len(v.Findings) != 1 || v.Findings[0].Path != bad || v.Findings[0].Commit != commit || !v.Failed() {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	if _, err := s.Acknowledge(ctx, []string{commit[:8]}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Verify(ctx, nil); err != nil || len(v.Findings) != 1 || !v.Findings[0].Acknowledged || v.Failed() {
		t.Fatalf("verify after ack = %+v, %v", v, err)
	}
}

func TestVerifyFindsRewrittenHistory(t *testing.T) {
	s := newLog(t)
	a := mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	b := mustAppend(t, s, deploy("b.example.com", "1.0.0"))
	if v, err := s.Verify(ctx, nil); err != nil || len(v.Findings) != 0 {
		t.Fatalf("clean log: %v, %v", v, err)
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

	v, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	findings := v.Findings
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
	v, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	findings := v.Findings
	if len(findings) != 1 || findings[0].Path != dropped.Path || findings[0].Commit != merge || findings[0].Problem != "record deleted" {
		t.Fatalf("findings = %+v", findings)
	}
}
