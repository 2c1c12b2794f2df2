package hub

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// A hostile review of the group commit: what an appender's credentials,
// or a replay of what an appender sent, can make the hub do.

// request is the hand-over of ev by actor under id, as an appender sends it.
func request(t testing.TB, ev *metav1.Event, actor *metav1.Actor, id string) record.Handover {
	t.Helper()
	evData, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	actorData, err := proto.Marshal(actor)
	if err != nil {
		t.Fatal(err)
	}
	return record.Handover{Event: evData, Actor: actorData, ID: id}
}

func deployEv(app, version string) *metav1.Event {
	return &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: version, Address: &metav1.Address{App: app}}
}

// ask hands req to the hub and says what it answered; a timeout fails the
// test (the hub must answer every request it can read).
func askHub(t testing.TB, o notify.Options, req record.Handover) (record.HandoverReply, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), notify.AppendBudget)
	defer cancel()
	r, err := notify.RequestAppend(ctx, o, req)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("the hub did not answer: %v", err)
	}
	return r, err
}

// remoteRecords are the record files on the remote's main, and the event
// ids they hold.
func remoteRecords(t testing.TB, remote string) (paths []string, ids map[string]int) {
	t.Helper()
	ids = map[string]int{}
	out, err := exec.Command("git", "-C", remote, "ls-tree", "-r", "--name-only", "main", "projects").CombinedOutput()
	if err != nil {
		t.Fatalf("ls-tree: %v: %s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasSuffix(p, ".pb") {
			continue
		}
		paths = append(paths, p)
		ids[strings.TrimSuffix(filepath.Base(p), ".pb")]++
	}
	return paths, ids
}

// fsck fails the test when the remote's objects are not ones git accepts.
func fsck(t testing.TB, repo string) {
	t.Helper()
	if out, err := exec.Command("git", "-C", repo, "fsck", "--no-dangling").CombinedOutput(); err != nil {
		t.Errorf("git fsck of %s: %v\n%s", repo, err, out)
	}
}

// What an appender can send that the hub must refuse, each answered (not
// left to time out), nothing of it reaching the remote, the remote's
// objects still ones git accepts, and the hub still grouping good appends
// after it.
func TestGroupCommitRefusesHostileRequests(t *testing.T) {
	l := newRemoteLog(t)
	op := l.clone(t)
	first := appendEv(t, op, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	h, stop := runHub(t, Config{Store: l.clone(t), NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	o := seedOptions(t, h, h.AppenderSeed())
	mallory := &metav1.Actor{Name: "Mallory", Email: "m@example.com"}
	fresh := func() string { return record.NewID(time.Now()) }
	lockBody := deployEv("a.example.com", "1.0.1")
	lockBody.Body = &metav1.Event_Lock{Lock: &metav1.Lock{}}
	for _, tt := range []struct {
		name string
		req  func() record.Handover
	}{
		{"a kind whose body does not match", func() record.Handover { return request(t, lockBody, mallory, fresh()) }},
		{"an unknown kind", func() record.Handover {
			return request(t, &metav1.Event{Kind: 999, Address: &metav1.Address{App: "a.example.com"}}, mallory, fresh())
		}},
		{"an env event", func() record.Handover {
			return request(t, &metav1.Event{Kind: metav1.Kind_KIND_ENV, Address: &metav1.Address{App: "a.example.com"}}, mallory, fresh())
		}},
		{"a deploy without a version", func() record.Handover { return request(t, deployEv("a.example.com", ""), mallory, fresh()) }},
		{"an app that climbs out of the log", func() record.Handover {
			return request(t, deployEv("../../../../etc/x.example.com", "1"), mallory, fresh())
		}},
		{"a project that climbs out of the log", func() record.Handover {
			ev := deployEv("b.example.com", "1")
			ev.Address.Project = "../.."
			return request(t, ev, mallory, fresh())
		}},
		{"a control character in the operator", func() record.Handover {
			return request(t, deployEv("a.example.com", "1.0.2"), &metav1.Actor{Name: "Mallory\nCommitter: x"}, fresh())
		}},
		{"angle brackets in the operator's name", func() record.Handover {
			return request(t, deployEv("a.example.com", "1.0.3"), &metav1.Actor{Name: "Alice <alice@example.com> 0 +0000>", Email: "x"}, fresh())
		}},
		{"an angle bracket in the operator's email", func() record.Handover {
			return request(t, deployEv("a.example.com", "1.0.4"), &metav1.Actor{Name: "Mallory", Email: "m@example.com> 1 +0000"}, fresh())
		}},
		{"a blank operator", func() record.Handover {
			return request(t, deployEv("a.example.com", "1.0.5"), &metav1.Actor{Name: "   "}, fresh())
		}},
		{"a malformed id", func() record.Handover {
			return request(t, deployEv("a.example.com", "1.0.6"), mallory, "../../../../meta.yaml")
		}},
		{"an id past what a time can say", func() record.Handover {
			return request(t, deployEv("a.example.com", "1.0.7"), mallory, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
		}},
		{"an id a year ahead", func() record.Handover {
			return request(t, deployEv("a.example.com", "1.0.9"), mallory, idAt(time.Now().AddDate(1, 0, 0)))
		}},
		{"an id from 2001", func() record.Handover {
			return request(t, deployEv("a.example.com", "1.0.10"), mallory, idAt(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)))
		}},
		{"an oversized record", func() record.Handover {
			ev := deployEv("a.example.com", "1.0.8")
			ev.Message = strings.Repeat("x", 200<<10)
			return request(t, ev, mallory, fresh())
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := remoteRecords(t, l.remote)
			r, err := askHub(t, o, tt.req())
			if err == nil {
				t.Errorf("the hub recorded it: %s at %s", r.Commit, r.Path)
			}
			after, ids := remoteRecords(t, l.remote)
			if len(after) != len(before) {
				t.Errorf("the remote holds %d records, had %d", len(after), len(before))
			}
			for id, n := range ids {
				if n > 1 {
					t.Errorf("event id %s is in the log %d times", id, n)
				}
			}
			fsck(t, l.remote)
		})
	}
	t.Run("the id of another app's event", func(t *testing.T) {
		// The stream keeps one message per event id (Nats-Msg-Id), so a
		// second event under an id the log has already is dropped for
		// every follower, and an id names two events for `meta show`.
		t.Skip("FINDING (MEDIUM): the hub records an event under an id another app's event has (store/group.go recorded looks in the item's own app only); grouped ids are now within maxIDSkew of the hub's clock, so only a recent id can be replayed; fix: once per group, list the records the commits of the last 2*maxIDSkew added (by their ids) and refuse an item whose id is among them in another app")
		r, err := askHub(t, o, request(t, deployEv("b.example.com", "6.6.6"), mallory, first))
		if err == nil {
			t.Errorf("the hub recorded it: %s at %s", r.Commit, r.Path)
		}
		if _, ids := remoteRecords(t, l.remote); ids[first] != 1 {
			t.Errorf("event id %s is in the log %d times", first, ids[first])
		}
	})
	// The hub still groups a good append.
	r, err := Append(context.Background(), op, o, deployEv("a.example.com", "2.0.0"), alice, time.Now(), store.AppendOptions{})
	if err != nil || !r.ViaHub {
		t.Fatalf("a good append after them: via hub %v (%v), %v", r != nil && r.ViaHub, r.HubErr, err)
	}
}

// The same request delivered twice (a replay, or a retry NATS delivered
// twice), one after the other and both in one group: one commit, and both
// answers say what was recorded, neither "not recorded".
func TestGroupCommitSameRequestTwice(t *testing.T) {
	l := newRemoteLog(t)
	slow := holdPushes(t, l.remote)
	h, stop := runHub(t, Config{Store: l.clone(t), NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	o := seedOptions(t, h, h.AppenderSeed())

	req := request(t, deployEv("a.example.com", "1.0.0"), alice, record.NewID(time.Now()))
	r1, err := askHub(t, o, req)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := askHub(t, o, req)
	if err != nil {
		t.Fatalf("the replay: %v, want the answer the first got", err)
	}
	if r1.Path != r2.Path || string(r1.Record) != string(r2.Record) {
		t.Errorf("the replay was answered %s %q, the first %s", r2.Path, r2.Record, r1.Path)
	}

	// Twice in one group: the hub is held in a push while both queue.
	slow.hold()
	blocker := make(chan error, 1)
	go func() {
		_, err := askHub(t, o, request(t, deployEv("c.example.com", "1.0.0"), alice, record.NewID(time.Now())))
		blocker <- err
	}()
	slow.waitEntered(t)
	twice := request(t, deployEv("b.example.com", "1.0.0"), alice, record.NewID(time.Now()))
	answers := make([]error, 2)
	replies := make([]record.HandoverReply, 2)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() { defer wg.Done(); replies[i], answers[i] = askHub(t, o, twice) }()
	}
	waitFor(t, "both copies queued", func() bool { return len(h.appends) == 2 })
	slow.release()
	wg.Wait()
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	for i, err := range answers {
		if err != nil {
			t.Errorf("copy %d: %v, want it answered as recorded", i, err)
		}
	}
	if replies[0].Path != replies[1].Path {
		t.Errorf("copies answered at %s and %s", replies[0].Path, replies[1].Path)
	}
	_, ids := remoteRecords(t, l.remote)
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s recorded %d times", id, n)
		}
	}
	if len(ids) != 3 {
		t.Errorf("%d events on the remote, want 3", len(ids))
	}
}

// One request in a group that fails only when its commit is made (an
// event Validate refuses once stamped) must not cost the others the group:
// the hub answers it and commits the rest in one push, not one push each.
func TestGroupCommitOneBadAppendDoesNotSpoilTheGroup(t *testing.T) {
	l := newRemoteLog(t)
	slow := holdPushes(t, l.remote)
	h, stop := runHub(t, Config{Store: l.clone(t), NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	o := seedOptions(t, h, h.AppenderSeed())

	slow.hold()
	blocker := make(chan error, 1)
	go func() {
		_, err := askHub(t, o, request(t, deployEv("c.example.com", "1.0.0"), alice, record.NewID(time.Now())))
		blocker <- err
	}()
	slow.waitEntered(t)
	const good = 8
	answers := make([]error, good+1)
	var wg sync.WaitGroup
	for i := range answers {
		ev := deployEv("a.example.com", "1.0."+string(rune('0'+i)))
		if i == good {
			// A successful deploy without a version: refused only when
			// stamped and validated.
			ev = deployEv("b.example.com", "")
		}
		req := request(t, ev, operator(i), record.NewID(time.Now()))
		wg.Add(1)
		go func() { defer wg.Done(); _, answers[i] = askHub(t, o, req) }()
	}
	waitFor(t, "the group queued", func() bool { return len(h.appends) == good+1 })
	pushesBefore := slow.pushes()
	slow.release()
	wg.Wait()
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	for i, err := range answers[:good] {
		if err != nil {
			t.Errorf("good append %d: %v", i, err)
		}
	}
	if answers[good] == nil {
		t.Errorf("the bad append was recorded")
	}
	if n := slow.pushes() - pushesBefore; n > 2 {
		t.Errorf("%d pushes for the blocker and one group of %d good appends, want 2", n, good)
	}
}

// pushHold is a remote whose pushes can be held in its pre-receive hook,
// and which counts the pushes it took.
type pushHold struct{ dir string }

// holdPushes installs the hooks in the bare remote.
func holdPushes(t testing.TB, remote string) *pushHold {
	t.Helper()
	dir := t.TempDir()
	hook := "#!/bin/sh\ntouch " + dir + "/entered\nwhile [ -e " + dir + "/hold ]; do sleep 0.02; done\n"
	post := "#!/bin/sh\necho x >> " + dir + "/pushes\n"
	for name, body := range map[string]string{"pre-receive": hook, "post-receive": post} {
		if err := os.WriteFile(filepath.Join(remote, "hooks", name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &pushHold{dir: dir}
}

func (p *pushHold) hold() {
	os.Remove(filepath.Join(p.dir, "entered"))
	os.WriteFile(filepath.Join(p.dir, "hold"), nil, 0o644)
}

func (p *pushHold) release() { os.Remove(filepath.Join(p.dir, "hold")) }

func (p *pushHold) waitEntered(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(p.dir, "entered")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no push reached the remote's hook")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *pushHold) pushes() int {
	data, _ := os.ReadFile(filepath.Join(p.dir, "pushes"))
	return strings.Count(string(data), "x")
}

// An append whose answer does not come in time while the hub does commit
// it (its push outlasts notify.AppendBudget): the operator's meta appends
// directly with the same id, the two pushes race, and the remote holds the
// event once.
func TestGroupCommitAnswerTooLateIsNotRecordedTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the hand-over's budget")
	}
	l := newRemoteLog(t)
	op := l.clone(t)
	slow := holdPushes(t, l.remote)
	hubClone := l.clone(t)
	h, stop := runHub(t, Config{Store: hubClone, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	o := seedOptions(t, h, h.AppenderSeed())
	slow.hold()
	go func() {
		// Held past the budget, then both pushes (the hub's, the direct
		// path's) go on at once.
		time.Sleep(notify.AppendBudget + 2*time.Second)
		slow.release()
	}()
	r, err := Append(context.Background(), op, o, deployEv("a.example.com", "1.0.0"), alice, time.Now(), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.ViaHub {
		t.Fatalf("answered through the hub after %s", notify.AppendBudget)
	}
	t.Logf("the direct path: %v (the hub: %v)", r.Pushed, r.HubErr)
	waitFor(t, "the hub's group to end", func() bool { return h.grouped.Load() == 1 })
	for _, s := range []*store.Store{op, hubClone} {
		if _, err := s.Sync(context.Background(), store.SyncOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, ids := remoteRecords(t, l.remote)
	if len(ids) != 1 || ids[r.Event.GetId()] != 1 {
		t.Errorf("the remote holds %v, want %s once", ids, r.Event.GetId())
	}
	fsck(t, l.remote)
}

// A hub stopped while its push is on the wire (between its commit and the
// push's end): the operator's meta appends directly with the same id, the
// hub's clone reopened (a restart) syncs, groups again, and the remote
// holds each event once.
func TestGroupCommitHubStoppedMidPush(t *testing.T) {
	l := newRemoteLog(t)
	op := l.clone(t)
	slow := holdPushes(t, l.remote)
	hubClone := l.clone(t)
	dataDir := t.TempDir()
	h, stop := runHub(t, Config{Store: hubClone, NATSListen: "127.0.0.1:0", DataDir: dataDir, HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	o := seedOptions(t, h, h.AppenderSeed())
	slow.hold()
	type result struct {
		r   *Handed
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := Append(context.Background(), op, o, deployEv("a.example.com", "1.0.0"), alice, time.Now(), store.AppendOptions{})
		done <- result{r, err}
	}()
	slow.waitEntered(t)
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(200 * time.Millisecond)
	slow.release()
	<-stopped
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Logf("via hub %v; the hub: %v", res.r.ViaHub, res.r.HubErr)
	// The restart: the clone reopened, as `meta serve` opens it.
	hubClone.Close()
	reopened, err := store.Open(hubClone.Root())
	if err != nil {
		t.Fatalf("the hub's clone after the stop: %v", err)
	}
	defer reopened.Close()
	h2, stop2 := runHub(t, Config{Store: reopened, NATSListen: "127.0.0.1:0", DataDir: dataDir, HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop2()
	r2, err := Append(context.Background(), op, seedOptions(t, h2, h2.AppenderSeed()), deployEv("a.example.com", "1.0.1"), alice, time.Now(), store.AppendOptions{})
	if err != nil || !r2.ViaHub {
		t.Fatalf("an append through the restarted hub: via hub %v (%v), %v", r2 != nil && r2.ViaHub, r2.HubErr, err)
	}
	if _, err := reopened.Sync(context.Background(), store.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	_, ids := remoteRecords(t, l.remote)
	if len(ids) != 2 || ids[res.r.Event.GetId()] != 1 || ids[r2.Event.GetId()] != 1 {
		t.Errorf("the remote holds %v, want %s and %s once each", ids, res.r.Event.GetId(), r2.Event.GetId())
	}
	fsck(t, l.remote)
	fsck(t, reopened.Root())
}

// A request the hub committed but could not push, handed over again (a
// replay, or the operator's meta trying the hub again): the answer must
// not say it is recorded while only the hub's clone has it.
func TestGroupCommitReplayOfAnUnpushedAppendDoesNotLie(t *testing.T) {
	l := newRemoteLog(t)
	refuse, allow := refusePushes(t, l.remote)
	hubClone := l.clone(t)
	h, stop := runHub(t, Config{Store: hubClone, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	o := seedOptions(t, h, h.AppenderSeed())
	req := request(t, deployEv("a.example.com", "1.0.0"), alice, record.NewID(time.Now()))
	refuse()
	if _, err := askHub(t, o, req); err == nil {
		t.Fatal("answered as recorded while the remote refuses every push")
	}
	r, err := askHub(t, o, req)
	if _, ids := remoteRecords(t, l.remote); err == nil && ids[req.ID] == 0 {
		t.Errorf("the replay was answered as recorded (%s, %s), but the remote does not hold it", r.Commit, r.Path)
	}
	// Once the remote takes pushes again, the operator's direct path
	// (what an answer that is not "recorded" leads to) records it once.
	allow()
	op := l.clone(t)
	ev := deployEv("a.example.com", "1.0.0")
	out, err := op.Append(context.Background(), ev, alice, time.Now(), store.AppendOptions{ID: req.ID})
	if err != nil || !out.Pushed {
		t.Fatalf("the direct path: %v", err)
	}
	if _, err := hubClone.Sync(context.Background(), store.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ids := remoteRecords(t, l.remote); ids[req.ID] != 1 || len(ids) != 1 {
		t.Errorf("the remote holds %v, want %s once", ids, req.ID)
	}
}

// README: the appender credentials "may publish appends and the nudge,
// and read its own answers, nothing else". Their subscribe permission is
// all of _INBOX.>, so any appender (or follower) reads every other
// appender's answers, and the answers to the hub's own requests.
func TestGroupCommitAppendersReadOnlyTheirOwnAnswers(t *testing.T) {
	t.Skip("FINDING (LOW): appenders and followers may subscribe to _INBOX.> (hub/natsauth.go:152, FollowerSubscribe), so they read every answer on the server; fix: give the hub's connection a custom inbox prefix outside _INBOX, and say in README that appenders share one key and so one inbox space")
	l := newRemoteLog(t)
	op := l.clone(t)
	h, stop := runHub(t, Config{Store: l.clone(t), NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	defer stop()
	o := seedOptions(t, h, h.AppenderSeed())
	spy, err := connectAs(t, h, h.AppenderSeed())
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	seen := make(chan *nats.Msg, 16)
	if _, err := spy.ChanSubscribe("_INBOX.>", seen); err != nil {
		t.Fatal(err)
	}
	spy.Flush()
	if _, err := Append(context.Background(), op, o, deployEv("a.example.com", "1.0.0"), alice, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-seen:
		t.Errorf("another appender's connection read an answer on %s: %.80q", m.Subject, m.Data)
	case <-time.After(500 * time.Millisecond):
	}
}

// idAt is an event id carrying the time at, as an appender may write one
// (record.NewID never goes back in time within a process).
func idAt(at time.Time) string {
	const digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	ms := uint64(at.UnixMilli())
	id := make([]byte, 26)
	for i := 9; i >= 0; i-- {
		id[i] = digits[ms&31]
		ms >>= 5
	}
	for i := 10; i < 26; i++ {
		id[i] = digits[(i*7)%32]
	}
	return string(id)
}
