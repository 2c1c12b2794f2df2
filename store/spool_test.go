//go:build unix

package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

var (
	carol = &metav1.Actor{Name: "Carol", Email: "carol@example.com", Host: "pi"}
	dave  = &metav1.Actor{Name: "Dave", Email: "dave@example.com", Host: "ci"}
)

// spoolClones joins n clones of one bare remote that share a turns
// directory, as one machine's writers do; it returns the remote, the
// clones and the spool's directory.
func spoolClones(t *testing.T, n int) (string, []*Store, string) {
	t.Helper()
	remote := bareRemote(t)
	turns := t.TempDir()
	clones := make([]*Store, n)
	for i := range clones {
		clones[i] = join(t, remote)
		clones[i].turns = turns
	}
	return remote, clones, filepath.Join(turns, turnKey(clones[0].repo.RemoteURL(ctx))+".spool")
}

// mustUseSpool makes the spool at dir, as s would, and fails the test
// unless s may use it.
func mustUseSpool(t *testing.T, s *Store, dir string) {
	t.Helper()
	if _, ok := openSpool(s.turns, filepath.Base(strings.TrimSuffix(dir, ".spool"))); !ok {
		t.Fatal("the spool is not usable")
	}
}

// holdTurnHere takes the remote's turn in this process, as another
// writer holding it; the returned func gives it back.
func holdTurnHere(t *testing.T, s *Store) (release func()) {
	t.Helper()
	f, err := openTurnFile(s.turns, turnKey(s.repo.RemoteURL(ctx)))
	if err != nil {
		t.Fatal(err)
	}
	if !tryTurn(f) {
		t.Fatal("the turn is taken")
	}
	stampTurn(f)
	return func() { f.Close() }
}

// spooled waits for n requests in the spool at dir and returns their ids.
func spooled(t *testing.T, dir string, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.req"))
		if len(matches) >= n {
			var ids []string
			for _, m := range matches {
				ids = append(ids, strings.TrimSuffix(filepath.Base(m), ".req"))
			}
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests spooled in %s, want %d", len(matches), dir, n)
		}
	}
}

// recordedTimes is how many commits on the remote's main add or change
// the record of the event with id.
func recordedTimes(t *testing.T, remote, id string) int {
	t.Helper()
	return strings.Count(git(t, remote, "log", "--format=", "--name-only", "main"), id)
}

type appendResult struct {
	out *Appended
	err error
}

// appendInBackground appends ev to s as actor and delivers the result.
func appendInBackground(s *Store, ev *metav1.Event, actor *metav1.Actor) <-chan appendResult {
	got := make(chan appendResult, 1)
	go func() {
		out, err := s.Append(ctx, ev, actor, time.Now(), AppendOptions{})
		got <- appendResult{out, err}
	}()
	return got
}

// Writers that find the remote's turn taken spool their appends, and the
// next holder records them all with its own in one write: each event its
// own commit by its own operator, one push, and every writer told so.
func TestWaitingAppendersAreRecordedByTheTurnsHolder(t *testing.T) {
	remote, clones, dir := spoolClones(t, 5)
	before := git(t, remote, "rev-parse", "main")
	release := holdTurnHere(t, clones[4])
	actors := []*metav1.Actor{alice, bob, carol, dave}
	var results []<-chan appendResult
	for i, a := range actors {
		results = append(results, appendInBackground(clones[i], deploy(fmt.Sprintf("app%d.example.com", i), "1.0.0"), a))
	}
	spooled(t, dir, 3) // all but the one that takes the turn next
	release()
	var commits, ids []string
	for i, r := range results {
		got := <-r
		if got.err != nil {
			t.Fatalf("writer %d: %v", i, got.err)
		}
		if !got.out.Pushed || len(got.out.Events) != 1 || got.out.Event.GetAddress().GetApp() != fmt.Sprintf("app%d.example.com", i) {
			t.Fatalf("writer %d: %+v", i, got.out.Written)
		}
		commits = append(commits, got.out.Commit)
		ids = append(ids, got.out.Event.GetId())
	}
	if c := slices.Compact(slices.Clone(commits)); len(c) != 1 {
		t.Errorf("the writers were told of different commits %v: not one group", commits)
	}
	authors := strings.Fields(git(t, remote, "log", "--format=%an", before+"..main"))
	slices.Sort(authors)
	if want := []string{"Alice", "Bob", "Carol", "Dave"}; !slices.Equal(authors, want) {
		t.Errorf("the remote's new commits are by %v, want one by each of %v", authors, want)
	}
	for _, id := range ids {
		if n := recordedTimes(t, remote, id); n != 1 {
			t.Errorf("event %s is recorded %d times", id, n)
		}
	}
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		t.Errorf("left in the spool: %s", e.Name())
	}
}

// A holder that does not do its part, or answers what it did not do, never
// costs a waiting writer its event, nor records it twice: the writer goes
// down the direct path with the same id.
func TestAWaiterOutlivesItsHolder(t *testing.T) {
	for _, tc := range []struct {
		name string
		// holder acts as the holder that claimed the request with id,
		// from clone h, before it gives the turn back.
		holder func(t *testing.T, h *Store, dir, id string)
	}{
		{"dies after claiming", func(t *testing.T, h *Store, dir, id string) {}},
		{"records it and dies before answering", func(t *testing.T, h *Store, dir, id string) {
			it, err := readRequest(filepath.Join(dir, id+".claimed"), id, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			at, _ := record.IDTime(id) // ids made earlier in the package may be dated ahead
			res := h.AppendGroup(withTurn(ctx), bob, at, []GroupItem{it})
			if res[0].Err != nil || !res[0].Pushed {
				t.Fatalf("the holder's group: %+v", res[0])
			}
		}},
		{"answers garbage", func(t *testing.T, h *Store, dir, id string) {
			os.WriteFile(filepath.Join(dir, id+".res"), []byte(`{"record": "AAAA`), 0o600)
		}},
		{"answers an error", func(t *testing.T, h *Store, dir, id string) {
			spool{dir: dir}.reply(id, answerError("push refused"))
		}},
		{"answers with another event", func(t *testing.T, h *Store, dir, id string) {
			other := deploy("a.example.com", "9.9.9")
			other.Id = record.NewID(time.Now())
			data, _ := proto.Marshal(other)
			spool{dir: dir}.reply(id, spoolAnswer{HandoverReply: record.HandoverReply{Record: data, Path: "projects/x", Commit: "0000"}})
		}},
		{"answers with its event in another app", func(t *testing.T, h *Store, dir, id string) {
			ev := deploy("b.example.com", "1.0.0")
			ev.Id = id
			data, _ := proto.Marshal(ev)
			spool{dir: dir}.reply(id, spoolAnswer{HandoverReply: record.HandoverReply{Record: data, Path: "projects/x", Commit: "0000"}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote, clones, dir := spoolClones(t, 2)
			release := holdTurnHere(t, clones[1])
			result := appendInBackground(clones[0], deploy("a.example.com", "1.0.0"), alice)
			id := spooled(t, dir, 1)[0]
			if err := os.Rename(filepath.Join(dir, id+".req"), filepath.Join(dir, id+".claimed")); err != nil {
				t.Fatal(err)
			}
			tc.holder(t, clones[1], dir, id)
			release()
			got := <-result
			if got.err != nil {
				t.Fatal(got.err)
			}
			if got.out.Event.GetId() != id || !got.out.Pushed || got.out.Event.GetVersion() != "1.0.0" {
				t.Fatalf("the writer was told %+v of %v", got.out.Written, got.out.Event)
			}
			if n := recordedTimes(t, remote, id); n != 1 {
				t.Errorf("event %s is recorded %d times", id, n)
			}
			if n := strings.Count(git(t, remote, "log", "--format=%s", "main"), "\n"); n != 1 {
				t.Errorf("the remote has %d commits after the first, want the one append", n)
			}
		})
	}
}

// What others may leave in the spool (garbage, a request half written or
// past its deadline (a replay), one whose id is not its name's) is
// answered with an error or cleared, never recorded, and the holder's own
// append goes on.
func TestTheHolderRefusesHostileRequests(t *testing.T) {
	remote, clones, dir := spoolClones(t, 1)
	s := clones[0]
	mustUseSpool(t, s, dir)
	request := func(id string, deadline time.Time) []byte {
		h, err := record.NewHandover(deploy("evil.example.com", "6.6.6"), bob, id, "", "", false, deadline)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(h)
		return data
	}
	now := time.Now()
	garbage, expired, misnamed, other := record.NewID(now), record.NewID(now), record.NewID(now), record.NewID(now)
	files := map[string][]byte{
		garbage + ".req":             []byte("{not json"),
		expired + ".req":             request(expired, now.Add(-time.Second)),
		misnamed + ".req":            request(other, now.Add(time.Minute)),
		"not-an-id.req":              request(other, now.Add(time.Minute)),
		"." + other + ".req.tmp-abc": []byte(`{"event":`), // a request being written
	}
	for name, data := range files {
		writeRaw(t, filepath.Join(dir, name), data)
	}
	out := mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	if !out.Pushed {
		t.Fatalf("the holder's own append: %v", out.Warnings)
	}
	for _, id := range []string{garbage, expired, misnamed} {
		var a spoolAnswer
		data, err := os.ReadFile(filepath.Join(dir, id+".res"))
		if err != nil || json.Unmarshal(data, &a) != nil || a.Error == "" {
			t.Errorf("request %s: answer %q (%v), want an error", id, data, err)
		}
		if n := recordedTimes(t, remote, id); n != 0 {
			t.Errorf("request %s was recorded", id)
		}
	}
	if strings.Contains(git(t, remote, "log", "--format=", "--name-only", "main"), "evil.example.com") {
		t.Error("a hostile request's app reached the remote")
	}
	if _, err := os.Stat(filepath.Join(dir, "not-an-id.req")); !os.IsNotExist(err) {
		t.Errorf("a request not named by an id is left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "."+other+".req.tmp-abc")); err != nil {
		t.Errorf("a request being written was touched: %v", err)
	}
}

func writeRaw(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The spool is used only where nobody but this user may write: a request
// there is recorded under the operator it names.
func TestASpoolOthersMayWriteIsNotUsed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, turns, spoolDir string)
		ok    bool
	}{
		{"private", func(t *testing.T, turns, spoolDir string) {}, true},
		{"turns open to the group", func(t *testing.T, turns, spoolDir string) { os.Chmod(turns, 0o770) }, false},
		{"spool open to all", func(t *testing.T, turns, spoolDir string) {
			os.Mkdir(spoolDir, 0o700)
			os.Chmod(spoolDir, 0o777)
		}, false},
		{"spool a symlink", func(t *testing.T, turns, spoolDir string) {
			os.Symlink(t.TempDir(), spoolDir)
		}, false},
		{"spool a file", func(t *testing.T, turns, spoolDir string) {
			os.WriteFile(spoolDir, nil, 0o600)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			turns := t.TempDir()
			tc.setup(t, turns, filepath.Join(turns, "k.spool"))
			if _, ok := openSpool(turns, "k"); ok != tc.ok {
				t.Errorf("usable: %v, want %v", ok, tc.ok)
			}
		})
	}
	// A writer that finds the spool open to others waits for the turn
	// instead, and appends once it has it.
	remote, clones, dir := spoolClones(t, 2)
	os.Chmod(clones[0].turns, 0o777)
	release := holdTurnHere(t, clones[1])
	result := appendInBackground(clones[0], deploy("a.example.com", "1.0.0"), alice)
	time.Sleep(300 * time.Millisecond)
	if matches, _ := filepath.Glob(filepath.Join(dir, "*.req")); len(matches) > 0 {
		t.Errorf("requests in a spool others may write: %v", matches)
	}
	release()
	got := <-result
	if got.err != nil || !got.out.Pushed {
		t.Fatalf("append: %+v, %v", got.out, got.err)
	}
	if n := recordedTimes(t, remote, got.out.Event.GetId()); n != 1 {
		t.Errorf("recorded %d times", n)
	}
}
