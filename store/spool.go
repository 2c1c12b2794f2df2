//go:build unix

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/afero"
	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// The spool: appenders on one machine that find the remote's turn taken
// hand their append to whoever holds it, instead of waiting for a round
// trip of their own. The turn alone (turn.go) spares them the push races,
// but still costs a fetch and a push per append, one after the other:
// with 16 writers, appends reaching the remote per second fell to 0.6 of
// one writer's (issue 18). With the spool, the holder records its own
// append and every waiting one in one group write (AppendGroup: each
// event its own commit, authored by its own operator, one fetch and one
// push), so more writers means bigger groups, not a longer queue.
//
// A waiting appender writes its request to <turns>/<turn key>.spool/
// <id>.req and polls for <id>.res. The holder, once it has the turn,
// claims the requests (renames them to .claimed: a waiter withdraws its
// own by removing the .req, and only one of the two renames or removes
// it), records them, and writes each answer before it gives the turn
// back. Nothing in the spool is trusted further than its own checks:
//
//   - the spool is used only in a directory of this user's that nobody
//     else may read or write (0700), in a turns directory nobody else may
//     write;
//   - a waiter believes only an answer that recorded and pushed its own
//     event id; any other answer (an error, garbage, an answer for
//     another id), or none, sends it down the direct path with the same
//     id, and an id the log already has is not recorded again, so a lost
//     or wrong answer costs a round trip, never a lost or doubled event;
//   - a request that is garbage, half written (they are written atomically
//     anyway) or past its deadline is answered with an error, not recorded;
//   - a holder that dies after claiming gives the turn back (the kernel
//     releases its flock): a waiter that finds the turn free and no
//     answer goes direct.
//
// Only plain appends to a log a hub may group (Grouped: unsigned) are
// spooled: a signed log's commits are each signed by their operator,
// which a holder cannot do for another.

// spoolPoll is how often a waiting appender looks for its answer and for
// the turn: a group write takes tens of milliseconds, and the look is a
// stat and a non-blocking flock.
const spoolPoll = 5 * time.Millisecond

// maxSpooled bounds the requests one holder records in one group.
const maxSpooled = 64

// spoolStale is the age past which a spool file nobody took (an answer
// whose waiter died, a claim whose holder died) is removed.
const spoolStale = 3 * turnMaxWait

type heldKey struct{}

// withTurn marks ctx as its caller's, who holds the remote's turn already:
// Write does not take it again (an flock taken twice in one process, on
// two files, waits for itself).
func withTurn(ctx context.Context) context.Context {
	return context.WithValue(ctx, heldKey{}, true)
}

// heldTurn says ctx's caller holds the remote's turn.
func heldTurn(ctx context.Context) bool {
	h, _ := ctx.Value(heldKey{}).(bool)
	return h
}

// spoolAnswer is what the holder did with a request: a hub's reply, and
// the placement of the app when the group started its log (Written's
// NewApps for the waiter; the hub's appender prints the reply's notes).
type spoolAnswer struct {
	record.HandoverReply
	NewApps []Placement `json:"new_apps,omitempty"`
}

// spool is the directory of one remote's spooled requests.
type spool struct{ dir string }

// spools says Append may hand this append to the turn's holder.
func (s *Store) spools(ctx context.Context, ev *metav1.Event, opts AppendOptions) bool {
	k := ev.GetKind()
	return !opts.Offline && s.turns != "" && !heldTurn(ctx) &&
		k != metav1.Kind_KIND_ENV && record.Appendable(k) && s.Grouped() && s.HasRemote(ctx)
}

// openSpool is the spool of the remote whose turn is t, made when
// missing; ok false when it is not one to use: not private to this user.
func openSpool(turns, key string) (spool, bool) {
	sp := spool{dir: filepath.Join(turns, key+".spool")}
	if err := os.MkdirAll(sp.dir, 0o700); err != nil {
		return sp, false
	}
	// Others may not write the turns directory (they could put a spool of
	// their own in its place) nor read or write the spool.
	for dir, others := range map[string]os.FileMode{turns: 0o022, sp.dir: 0o077} {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&others != 0 {
			return sp, false
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
			return sp, false
		}
	}
	return sp, true
}

func (sp spool) path(id, ext string) string { return filepath.Join(sp.dir, id+ext) }

// put writes the request down for the holder.
func (sp spool) put(r record.Handover) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return atomicfile.WriteUnsynced(afero.NewOsFs(), sp.path(r.ID, ".req"), data, 0o600)
}

// withdraw takes the request with id back; false when a holder claimed it
// first.
func (sp spool) withdraw(id string) bool { return os.Remove(sp.path(id, ".req")) == nil }

// answer is the holder's answer to the request with id, removed once
// read; ok false while there is none.
func (sp spool) answer(id string) (spoolAnswer, bool) {
	p := sp.path(id, ".res")
	data, err := readSpoolFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return spoolAnswer{}, false
	}
	os.Remove(p)
	if err != nil {
		return answerError(fmt.Sprintf("the turn's holder's answer: %v", err)), true
	}
	var a spoolAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return answerError(fmt.Sprintf("the turn's holder answered with garbage: %v", err)), true
	}
	return a, true
}

// reply writes the answer to the request with id and drops its claim.
func (sp spool) reply(id string, a spoolAnswer) {
	if data, err := json.Marshal(a); err == nil {
		atomicfile.WriteUnsynced(afero.NewOsFs(), sp.path(id, ".res"), data, 0o600)
	}
	os.Remove(sp.path(id, ".claimed"))
}

// claimed is a request a holder took.
type claimed struct {
	id   string
	item GroupItem
}

// claim takes up to maxSpooled requests waiting in the spool. It answers
// at once, with an error, those it will not record (garbage, past their
// deadline), and removes what was left behind long ago.
func (sp spool) claim(now time.Time) []claimed {
	entries, err := os.ReadDir(sp.dir)
	if err != nil {
		return nil
	}
	var out []claimed
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".req") {
			if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > spoolStale {
				os.Remove(filepath.Join(sp.dir, name))
			}
			continue
		}
		if len(out) == maxSpooled {
			continue
		}
		id := strings.TrimSuffix(name, ".req")
		if projects.ValidateID(id) != nil {
			os.Remove(filepath.Join(sp.dir, name))
			continue
		}
		if os.Rename(sp.path(id, ".req"), sp.path(id, ".claimed")) != nil {
			continue // withdrawn meanwhile
		}
		it, err := readRequest(sp.path(id, ".claimed"), id, now)
		if err != nil {
			sp.reply(id, answerError(err.Error()))
			continue
		}
		out = append(out, claimed{id: id, item: it})
	}
	return out
}

// readRequest reads the claimed request with id at p.
func readRequest(p, id string, now time.Time) (GroupItem, error) {
	data, err := readSpoolFile(p)
	if err != nil {
		return GroupItem{}, fmt.Errorf("spooled request %s: %w", id, err)
	}
	var r record.Handover
	if err := json.Unmarshal(data, &r); err != nil {
		return GroupItem{}, fmt.Errorf("spooled request %s: %w", id, err)
	}
	if r.ID != id {
		return GroupItem{}, fmt.Errorf("spooled request %s names event id %q", id, r.ID)
	}
	if now.After(time.UnixMilli(r.Deadline)) {
		return GroupItem{}, fmt.Errorf("spooled request %s: its appender stopped waiting at %s", id, time.UnixMilli(r.Deadline).UTC().Format(time.RFC3339Nano))
	}
	ev, actor, err := r.Decode()
	if err != nil {
		return GroupItem{}, fmt.Errorf("spooled request %s: %w", id, err)
	}
	it := GroupItem{Event: ev, Actor: actor, Options: AppendOptions{ID: r.ID, Server: r.Server, Expect: r.Expect, Force: r.Force}}
	return it, nil
}

// maxSpoolFile bounds a request or an answer: an event and its operator
// (record.MaxRecord each), in JSON's base64, with room to spare.
const maxSpoolFile = 4*record.MaxRecord + 64<<10

// readSpoolFile reads the request or answer at p: a regular file, not a
// link (not followed), a FIFO or a device (opened without waiting, never
// read), and at most maxSpoolFile bytes, so that nothing put in the spool
// keeps the holder (who holds the turn meanwhile) or a waiter reading.
func readSpoolFile(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is no regular file (%s)", filepath.Base(p), fi.Mode().Type())
	}
	if fi.Size() > maxSpoolFile {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a spooled append may have", filepath.Base(p), fi.Size(), maxSpoolFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSpoolFile+1))
	if err == nil && len(data) > maxSpoolFile {
		err = fmt.Errorf("%s is more than the %d bytes a spooled append may have", filepath.Base(p), maxSpoolFile)
	}
	return data, err
}

// appendSpooled is Append on the spool: as the turn's holder, recording
// what others spooled with this append; else handing this append to the
// holder, or, when that does not work out, appending it directly with the
// same id.
func (s *Store) appendSpooled(ctx context.Context, ev *metav1.Event, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	// direct appends on this clone, with the turn held (turn) or not: by
	// the same id, so that the event is in the log once, whoever records
	// it. Like Write, the spool waits for the turn before the clone's
	// lock, which Write then takes: the clone's other writes wait on the
	// lock for a round trip, not for the wait.
	direct := func(turn bool) (*Appended, error) {
		c := ctx
		if turn {
			c = withTurn(ctx)
		}
		return s.append(c, "append", ev, actor, now, opts, nil)
	}
	if opts.ID == "" {
		opts.ID = record.NewID(now)
	}
	remote := s.repo.RemoteURL(ctx)
	key := turnKey(remote)
	f, err := openTurnFile(s.turns, key)
	if err != nil {
		return direct(false)
	}
	defer f.Close()
	if tryTurn(f) {
		return s.serveSpool(ctx, f, key, ev, actor, now, opts)
	}
	sp, ok := openSpool(s.turns, key)
	if !ok {
		return direct(false)
	}
	start := time.Now()
	deadline := start.Add(turnMaxWait)
	req, err := record.NewHandover(ev, actor, opts.ID, opts.Server, opts.Expect, opts.Force, deadline)
	if err != nil {
		return nil, fmt.Errorf("append %s: %w", ev.GetAddress().GetApp(), err)
	}
	if err := sp.put(req); err != nil {
		return direct(false)
	}
	// answered is the waiter's end: the holder's answer believed, or the
	// direct path.
	answered := func(a spoolAnswer, turn bool) (*Appended, error) {
		if out, ok := a.appended(ev.GetAddress().GetApp(), opts.ID); ok {
			// As a direct append says of this clone's files.
			for _, o := range s.repo.Others(projects.Root) {
				out.Warnings = append(out.Warnings, "not committed by meta: "+o)
			}
			return out, nil
		}
		return direct(turn)
	}
	holder, since := turnHolder(f), start
	var claimedAt time.Time // when the waiter found its request claimed
	for ; ; time.Sleep(spoolPoll) {
		if a, ok := sp.answer(opts.ID); ok {
			return answered(a, false)
		}
		if tryTurn(f) {
			defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			if claimedAt.IsZero() && sp.withdraw(opts.ID) {
				return s.serveSpool(ctx, f, key, ev, actor, now, opts)
			}
			// Claimed: its holder answered before giving the turn back,
			// or died first.
			a, _ := sp.answer(opts.ID)
			return answered(a, true)
		}
		t := time.Now()
		if h := turnHolder(f); h != holder {
			holder, since = h, t
		}
		if claimedAt.IsZero() {
			if t.Sub(since) < turnWait && t.Before(deadline) && ctx.Err() == nil {
				continue
			}
			if sp.withdraw(opts.ID) {
				// Nobody took it: go on without the turn, as a write
				// that waited past turnWait does.
				return direct(true)
			}
			claimedAt = t
		}
		// A holder took it and is recording it: wait for its answer as a
		// write waits for a clone's lock, then go direct (by the same id,
		// so the event is in the log once whoever records it).
		if t.Sub(claimedAt) > lockWait || ctx.Err() != nil {
			return direct(true)
		}
	}
}

// appended is the answer as the Appended the waiter returns, ok only when
// it recorded and pushed the event with id.
func (a spoolAnswer) appended(domain, id string) (*Appended, bool) {
	if a.Error != "" {
		return nil, false
	}
	got := &metav1.Event{}
	if proto.Unmarshal(a.Record, got) != nil || got.GetId() != id || got.GetAddress().GetApp() != domain || a.Path == "" {
		return nil, false
	}
	w := &Written{Events: []*metav1.Event{got}, Paths: []string{a.Path}, Commit: a.Commit, Pushed: true, NewApps: a.NewApps}
	return &Appended{Written: w, Event: got, Path: a.Path}, true
}

// serveSpool records this append as the remote's turn's holder (f, just
// taken), with the requests waiting in the spool, if any, and answers
// each before the turn is given back. now is the caller's, as for Append:
// the write's time, which leases are judged at.
func (s *Store) serveSpool(ctx context.Context, f *os.File, key string, ev *metav1.Event, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	stampTurn(f)
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	ctx = withTurn(ctx)
	var waiting []claimed
	if sp, ok := openSpool(s.turns, key); ok {
		waiting = sp.claim(time.Now())
		if len(waiting) > 0 {
			return s.appendWith(ctx, sp, waiting, ev, actor, now, opts)
		}
	}
	return s.append(ctx, "append", ev, actor, now, opts, nil)
}

// appendWith records ev and the claimed requests in one group write, and
// answers the requests.
func (s *Store) appendWith(ctx context.Context, sp spool, waiting []claimed, ev *metav1.Event, actor *metav1.Actor, callerNow time.Time, opts AppendOptions) (*Appended, error) {
	items := []GroupItem{{Event: ev, Actor: actor, Options: opts}}
	for _, c := range waiting {
		items = append(items, c.item)
	}
	// The group's clock is the holder's own event's: its id is dated as
	// this process dates events (record.NewID never goes back in time),
	// and a waiter's id, made on this machine moments ago, is judged
	// against it (maxIDSkew).
	now, err := record.IDTime(opts.ID)
	if err != nil {
		now = time.Now()
	}
	res := s.AppendGroup(ctx, actor, now, items)
	for i, c := range waiting {
		sp.reply(c.id, answerOf(res[i+1]))
	}
	if own := res[0]; own.Err == nil && own.Appended != nil {
		return own.narrow(), nil
	}
	// The store's own answer, with its errors' types, for what the group
	// did not record.
	return s.append(ctx, "append", ev, actor, callerNow, opts, nil)
}

// answerOf is a group's result for one spooled request.
func answerOf(r GroupResult) spoolAnswer {
	// No warnings: a pushed write's are of files left uncommitted in the
	// holder's clone, none of the waiter's business (it looks at its own).
	return spoolAnswer{HandoverReply: r.Reply(), NewApps: r.newApps()}
}

// answerError is an answer that sends the waiter down the direct path.
func answerError(why string) spoolAnswer {
	return spoolAnswer{HandoverReply: record.HandoverReply{Error: why}}
}

// narrow is a group's result for one event as its Appended: the group's
// Written names every event the group recorded, and every app it started.
func (r GroupResult) narrow() *Appended {
	w := *r.Written
	w.Events, w.Paths, w.NewApps = []*metav1.Event{r.Event}, []string{r.Path}, r.newApps()
	return &Appended{Written: &w, Event: r.Event, Path: r.Path}
}

// tryTurn takes the turn on f if it is free, without waiting.
func tryTurn(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
