package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Group commit (store/group.go): operators' meta hand their appends to the
// hub on notify.AppendSubject; one goroutine takes whatever is queued,
// records it in one write (each event its own commit, authored by its
// operator), pushes once and answers each. While one group is written the
// next queues, so a burst of N writers costs about N/group fetches and
// pushes instead of N, and contention makes the groups larger.

// maxGroup bounds one group commit, so that an answer never waits for a
// write of thousands.
const maxGroup = 256

// appendQueue is how many handed-over appends may wait; beyond, the hub
// says it is busy and the operator's meta appends directly.
const appendQueue = 4096

// pendingAppend is a request waiting for the group commit.
type pendingAppend struct {
	msg  *nats.Msg
	item store.GroupItem
	// deadline is when its sender stops waiting.
	deadline time.Time
}

// listenAppends subscribes to the hand-over of appends, in a queue group so
// that of two hubs for the log one takes each.
func (h *Hub) listenAppends() error {
	if _, err := h.nc.QueueSubscribe(notify.AppendSubject, "meta-hub", h.takeAppend); err != nil {
		return fmt.Errorf("listen for appends on %s: %w", notify.AppendSubject, err)
	}
	// Until the server has the subscription, a request finds no
	// responder and its append goes the direct path: have it before the
	// hub says it serves.
	if err := h.nc.Flush(); err != nil {
		return fmt.Errorf("listen for appends on %s: %w", notify.AppendSubject, err)
	}
	return nil
}

// takeAppend decodes one request and queues it.
func (h *Hub) takeAppend(m *nats.Msg) {
	var req record.Handover
	if err := json.Unmarshal(m.Data, &req); err != nil {
		answerAppend(m, record.HandoverReply{Error: "not an append request: " + err.Error()})
		return
	}
	ev, actor, err := req.Decode()
	if err != nil {
		answerAppend(m, record.HandoverReply{Error: err.Error()})
		return
	}
	p := &pendingAppend{msg: m, item: store.GroupItem{Event: ev, Actor: actor,
		Options: store.AppendOptions{ID: req.ID, Server: req.Server, Expect: req.Expect, Force: req.Force}}}
	if req.Deadline > 0 {
		p.deadline = time.UnixMilli(req.Deadline)
	}
	select {
	case h.appends <- p:
	default:
		answerAppend(m, record.HandoverReply{Error: "the hub is busy"})
	}
}

// groupCommits writes the queued appends, a group at a time, until ctx
// ends; what is queued then gets no answer, and its senders append
// directly.
func (h *Hub) groupCommits(ctx context.Context) {
	actor := h.actor()
	// last is how many the last group held and how long it took.
	var last struct {
		n    int
		took time.Duration
	}
	for {
		var group []*pendingAppend
		select {
		case <-ctx.Done():
			return
		case p := <-h.appends:
			group = append(group, p)
		}
		group = gather(h.appends, group, last.n, last.took)
		// One whose sender gave up is left to its direct path: starting
		// on it now would only race that path.
		now := time.Now()
		live := group[:0]
		for _, p := range group {
			if p.deadline.IsZero() || now.Before(p.deadline) {
				live = append(live, p)
			}
		}
		if len(live) == 0 {
			continue
		}
		items := make([]store.GroupItem, len(live))
		for i, p := range live {
			items[i] = p.item
		}
		start := time.Now()
		results := h.cfg.Store.AppendGroup(ctx, actor, now, items)
		last.n, last.took = len(items), time.Since(start)
		for i, r := range results {
			answerAppend(live[i].msg, r.Reply())
		}
		h.grouped.Add(int64(len(live)))
		h.committed()
	}
}

// gather adds to group what else is queued, up to maxGroup. After a group
// of many (writers waiting on each other), it waits a little for as many
// again: their writers send the next appends moments after their answers,
// and a group started on the first alone would leave the rest a whole
// write to wait, groups of one and of all the others taking turns. The
// wait is a small share of the last write, so a lone writer never waits.
func gather(queue <-chan *pendingAppend, group []*pendingAppend, lastN int, lastTook time.Duration) []*pendingAppend {
	for len(group) < maxGroup {
		select {
		case p := <-queue:
			group = append(group, p)
			continue
		default:
		}
		break
	}
	if lastN <= 1 || len(group) >= lastN {
		return group
	}
	wait := min(lastTook/gatherShare, maxGather)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(group) < min(lastN, maxGroup) {
		select {
		case p := <-queue:
			group = append(group, p)
		case <-timer.C:
			return group
		}
	}
	return group
}

// gatherShare and maxGather bound gather's wait: a tenth of the last
// write, at most 25 ms.
const (
	gatherShare = 10
	maxGather   = 25 * time.Millisecond
)

func answerAppend(m *nats.Msg, r record.HandoverReply) {
	data, _ := json.Marshal(r)
	m.Respond(data)
}
