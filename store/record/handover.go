package record

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// Handover is an append handed to another writer to record with its own:
// a hub's group commit (over NATS) or the remote's turn's holder on this
// machine (through the spool beside the turn file). Event and Actor are
// the protobuf encodings of the event as the operator's meta built it
// (meta.v1 Event, not yet stamped) and of its operator. ID is the event id
// the operator's meta chose, which its direct path uses too if the
// handover is not answered. Deadline is when the operator's meta stops
// waiting (Unix milliseconds): whoever takes it does not start on it
// after that.
type Handover struct {
	Event    []byte `json:"event"`
	Actor    []byte `json:"actor"`
	ID       string `json:"id"`
	Server   string `json:"server,omitempty"`
	Expect   string `json:"expect,omitempty"`
	Force    bool   `json:"force,omitempty"`
	Deadline int64  `json:"deadline"`
}

// NewHandover encodes an append of ev by actor for another writer; a zero
// deadline is none.
func NewHandover(ev *metav1.Event, actor *metav1.Actor, id, server, expect string, force bool, deadline time.Time) (Handover, error) {
	h := Handover{ID: id, Server: server, Expect: expect, Force: force}
	var err error
	if h.Event, err = proto.Marshal(ev); err != nil {
		return Handover{}, fmt.Errorf("event: %w", err)
	}
	if h.Actor, err = proto.Marshal(actor); err != nil {
		return Handover{}, fmt.Errorf("operator: %w", err)
	}
	if !deadline.IsZero() {
		h.Deadline = deadline.UnixMilli()
	}
	return h, nil
}

// Decode is the event and the operator the handover carries; it checks
// that they decode, nothing more (the append checks the rest).
func (h Handover) Decode() (*metav1.Event, *metav1.Actor, error) {
	ev, actor := &metav1.Event{}, &metav1.Actor{}
	if err := proto.Unmarshal(h.Event, ev); err != nil {
		return nil, nil, fmt.Errorf("not an event: %w", err)
	}
	if err := proto.Unmarshal(h.Actor, actor); err != nil {
		return nil, nil, fmt.Errorf("not an operator: %w", err)
	}
	return ev, actor, nil
}

// HandoverReply is what the writer that took a Handover did with it.
// Error empty: the event is committed and pushed, Record is its record
// file's content, at Path, in Commit. Notes are what the operator is told
// (a new app's placement). Any error, even one the direct path would give
// too (a lease, --expect), sends the operator's meta down the direct
// path, which says it with the store's own error.
type HandoverReply struct {
	Record []byte   `json:"record,omitempty"`
	Path   string   `json:"path,omitempty"`
	Commit string   `json:"commit,omitempty"`
	Notes  []string `json:"notes,omitempty"`
	Error  string   `json:"error,omitempty"`
}
