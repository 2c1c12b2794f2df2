package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Group commit: a hub running for the log records many operators' appends
// in one write (one lock, one pull, one push), each event still its own
// commit, authored by its operator, with the message meta's own appends
// write (commitMessage), so that the git log stays the operator log.
//
// The operator's meta chooses the event's id before it hands the event to
// the hub (AppendOptions.ID): when the hub does not answer in time, the
// direct path records the same id, and an id the log already has is never
// recorded again (Tx.recorded before a write, recordedAt when a replay
// meets the other copy).
//
// A log whose commits are signed is not grouped: the hub must never sign
// for an operator, and proposing each commit to its operator to sign is
// not built yet. ErrGroupSigned sends such appends down the direct path.

// ErrGroupSigned refuses a group commit on a log whose commits are signed
// (meta.yaml's signatures: required, or a hub clone that signs what it
// commits): each operator's meta appends on the direct path instead.
var ErrGroupSigned = errors.New("the log's commits are signed: a hub does not commit for its operators; append directly")

// errGroupOrder refuses a group item that can only be decided after an
// earlier item of its group: its operator's meta appends it directly.
var errGroupOrder = errors.New("decided after another event of its app")

// errAlready stops an append whose event id the log already holds.
var errAlready = errors.New("already recorded")

// maxIDSkew bounds how far from the hub's clock a grouped event's id may
// date it. The operator's meta makes the id just before it hands the event
// over, so a real one is seconds off (its wait, the clocks' drift); one
// further off is an appender dating an event where it likes (its id is its
// time), or replaying an old request. An operator whose clock is further
// off appends directly.
const maxIDSkew = 2 * time.Minute

// GroupItem is one operator's append handed to a hub.
type GroupItem struct {
	// Event is what the operator's meta built, as for Append.
	Event *metav1.Event
	// Actor is the operator, who authors the event and its commit.
	Actor *metav1.Actor
	// Options are the append's; Options.ID is required, Offline ignored.
	Options AppendOptions
}

// GroupResult is what became of one GroupItem: appended (perhaps earlier,
// by the operator's direct path: the log then holds it once) or refused.
type GroupResult struct {
	*Appended
	Err error
}

// Reply is the answer for one result, to whoever handed its append over
// (a hub's appender, a waiter of the spool): an error unless it is
// committed and pushed, with the event as recorded and the placement of
// its app when the group started its log.
func (r GroupResult) Reply() record.HandoverReply {
	switch {
	case r.Err != nil:
		return record.HandoverReply{Error: r.Err.Error()}
	case r.Appended == nil:
		return record.HandoverReply{Error: "not recorded"}
	case !r.Pushed:
		return record.HandoverReply{Error: "committed but not pushed: " + strings.Join(r.Warnings, "; ")}
	}
	data, err := proto.Marshal(r.Event)
	if err != nil {
		return record.HandoverReply{Error: err.Error()}
	}
	out := record.HandoverReply{Record: data, Path: r.Path, Commit: r.Commit}
	for _, p := range r.newApps() {
		out.Notes = append(out.Notes, p.String())
	}
	return out
}

// newApps are the apps the group started whose log is the result's app's
// (the group's Written names every one it started).
func (r GroupResult) newApps() []Placement {
	if r.Appended == nil || r.Written == nil {
		return nil
	}
	var out []Placement
	for _, p := range r.NewApps {
		if p.Address != (Placement{}).Address && p.App == r.Event.GetAddress().GetApp() {
			out = append(out, p)
		}
	}
	return out
}

// AppendGroup records items in one write, each event as its own commit by
// its own operator, and pushes them together. hub is who the write is
// made by (its lock and reflog), never the author of an event. When the
// write fails as a whole (a push refused, an event that cannot be
// stamped), each item is appended on its own so that each gets its own
// answer; nothing is half written.
func (s *Store) AppendGroup(ctx context.Context, hub *metav1.Actor, now time.Time, items []GroupItem) []GroupResult {
	res := make([]GroupResult, len(items))
	var added []int
	// twice maps an item whose id an earlier item of the group has (a
	// request delivered twice) to that item: it gets the same answer.
	twice := map[int]int{}
	out, err := s.Write(ctx, hub, now, AppendOptions{}, func(tx *Tx) error {
		if tx.cfg.SignaturesRequired() || s.signer != nil {
			return ErrGroupSigned
		}
		tx.group = true
		added = added[:0]
		clear(twice)
		ids := map[string]int{}
		// where is the address of each app an earlier item of the group
		// adds an event of. Each item is checked on the tip the group
		// starts from, which holds none of them: an item that expects its
		// app's head, or that places its app elsewhere than an earlier
		// item did (a new app's log started in two places), is not judged
		// here but sent down the direct path, which decides it after them.
		where := map[string]projects.Address{}
		for i, it := range items {
			res[i] = GroupResult{}
			a, found, err := tx.groupItem(it, now)
			domain := it.Event.GetAddress().GetApp()
			prev, earlier := where[a.App]
			switch {
			case err != nil:
				res[i].Err = err
			case found != nil:
				res[i].Appended = found
			case ids[it.Options.ID] > 0:
				twice[i] = ids[it.Options.ID] - 1
			case earlier && it.Options.Expect != "":
				res[i].Err = fmt.Errorf("append %s: %w: an event of the app comes before it in the hub's group, and what it expects is judged after that one", domain, errGroupOrder)
			case earlier && prev != a:
				res[i].Err = fmt.Errorf("append %s: %w: an event of the app placed under %s comes before it in the hub's group, and it places the app under %s", domain, errGroupOrder, prev, a)
			default:
				where[a.App] = a
				ids[it.Options.ID] = i + 1
				opts := it.Options
				tx.adds = append(tx.adds, txEvent{addr: a, ev: it.Event, actor: it.Actor, opts: &opts})
				added = append(added, i)
			}
		}
		if len(added) == 0 {
			return errUnchanged
		}
		return nil
	})
	// Deferred so that every answer below is copied; res is the slice
	// returned, so the copies reach the caller.
	defer func() {
		for i, first := range twice {
			res[i] = res[first]
		}
	}()
	switch {
	case errors.Is(err, errUnchanged):
		return res
	case errors.Is(err, ErrGroupSigned):
		for i := range res {
			res[i] = GroupResult{Err: err}
		}
		return res
	case err != nil:
		// One event spoiled the write (Write took all of it back): each
		// goes on its own, and only the one at fault is refused.
		for _, i := range added {
			it := items[i]
			a, err := s.append(ctx, "append", it.Event, it.Actor, now, it.Options, nil)
			res[i] = GroupResult{Appended: a, Err: err}
		}
		return res
	}
	for k, i := range added {
		res[i].Appended = &Appended{Written: out, Event: out.Events[k], Path: out.Paths[k]}
	}
	return res
}

// groupItem checks one item of a group on the write's tip: where its app
// is, the head it expects, whether the log holds its id already, and that
// its event stamps (now, as the write will stamp it).
func (tx *Tx) groupItem(it GroupItem, now time.Time) (projects.Address, *Appended, error) {
	ev := it.Event
	domain := ev.GetAddress().GetApp()
	switch {
	case it.Actor == nil || it.Actor.GetName() == "":
		return projects.Address{}, nil, fmt.Errorf("append %s: %w: no operator", domain, record.ErrInvalid)
	case it.Options.ID == "":
		return projects.Address{}, nil, fmt.Errorf("append %s: %w: a grouped event needs the id its operator chose", domain, record.ErrInvalid)
	case ev.GetKind() == metav1.Kind_KIND_ENV || !record.Appendable(ev.GetKind()):
		return projects.Address{}, nil, fmt.Errorf("append %s: %w: %s events are not appended through a hub", domain, record.ErrInvalid, record.KindName(ev.GetKind()))
	}
	if err := projects.ValidateID(it.Options.ID); err != nil {
		return projects.Address{}, nil, fmt.Errorf("append %s: %w: %w", domain, record.ErrInvalid, err)
	}
	if at, err := record.IDTime(it.Options.ID); err != nil || at.Sub(now).Abs() > maxIDSkew {
		return projects.Address{}, nil, fmt.Errorf("append %s: %w: event id %s is dated %s, more than %s from the hub's clock", domain, record.ErrInvalid, it.Options.ID, at.UTC().Format(time.RFC3339), maxIDSkew)
	}
	a, err := tx.Place(ev.GetAddress(), it.Options.Server)
	if err != nil {
		return a, nil, fmt.Errorf("append %s: %w", domain, err)
	}
	if found, err := tx.recorded(a, it.Options.ID); err != nil || found != nil {
		return a, found, err
	}
	if it.Options.Expect != "" {
		h, err := tx.Head(a)
		if err != nil {
			return a, nil, fmt.Errorf("append %s: %w", domain, err)
		}
		if err := expect(h, it.Options.Expect); err != nil {
			return a, nil, fmt.Errorf("append %s: %w", domain, err)
		}
	}
	// What would spoil the whole write when this item's commit is made (a
	// lease another operator holds, an event Validate refuses once
	// stamped) refuses this item alone, here: otherwise one bad request
	// sends every item of its group down the one-by-one path, a fetch and
	// a push each, and any appender can keep the hub doing that.
	opts := it.Options
	if _, err := tx.s.stampEvent(tx.tip, txEvent{addr: a, ev: ev, actor: it.Actor, opts: &opts}, it.Actor, now, now, opts, nil); err != nil {
		return a, nil, fmt.Errorf("append %s: %w", domain, err)
	}
	return a, nil, nil
}

// recorded is the event with id in the app at a as the write's tip holds
// it, nil when there is none (or no id).
func (tx *Tx) recorded(a projects.Address, id string) (*Appended, error) {
	if id == "" {
		return nil, nil
	}
	at, err := record.IDTime(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", record.ErrInvalid, err)
	}
	p := projects.RecordPath(a, id, at)
	data, err := tx.s.repo.FileAt(tx.tip, p)
	if err != nil || data == nil {
		return nil, err
	}
	ev, err := record.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	// Pushed only when the remote has it too: a hub that committed it and
	// could not push it holds the one copy, and an answer "recorded" to a
	// request handed over again would be a lie the operator then believes.
	pushed := false
	if remote, err := tx.s.repo.RemoteTip(); err == nil && !remote.IsZero() {
		there, err := tx.s.repo.FileAt(remote, p)
		pushed = err == nil && there != nil
	}
	w := &Written{Events: []*metav1.Event{ev}, Paths: []string{p}, Commit: tx.tip.String(), Pushed: pushed}
	if !pushed {
		w.Warnings = []string{"recorded in this clone before, not yet pushed; `meta sync` pushes it"}
	}
	return &Appended{Written: w, Event: ev, Path: p}, nil
}

// Grouped says a hub may record this clone's appends in its group commit:
// the log's commits are not signed, and this clone signs none.
func (s *Store) Grouped() bool { return s.signer == nil && !s.Config().SignaturesRequired() }
