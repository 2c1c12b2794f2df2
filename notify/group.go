package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// AppendSubject is where an operator's meta hands an event to the hub for
// its group commit (store.AppendGroup): a request, answered once the hub
// committed and pushed the event, or refused. Only the appenders' NATS
// user (and the hub's) may publish to it; followers may not.
const AppendSubject = "meta.hub.append"

// AppendRequest is one append handed to the hub. Event and Actor are the
// protobuf encodings of the event as the operator's meta built it (meta.v1
// Event, not yet stamped) and of its operator. ID is the event id the
// operator's meta chose, which its direct path uses too if the hub does not
// answer. Deadline is when the operator's meta stops waiting (Unix
// milliseconds): the hub does not start on it after that.
type AppendRequest struct {
	Event    []byte `json:"event"`
	Actor    []byte `json:"actor"`
	ID       string `json:"id"`
	Server   string `json:"server,omitempty"`
	Expect   string `json:"expect,omitempty"`
	Force    bool   `json:"force,omitempty"`
	Deadline int64  `json:"deadline"`
}

// AppendReply is the hub's answer. Error empty: the event is committed and
// pushed, Record is its record file's content, at Path, in Commit. Notes
// are what the operator is told (a new app's placement, warnings). Any
// error, even one the direct path would give too (a lease, --expect),
// sends the operator's meta down the direct path, which says it with the
// store's own error.
type AppendReply struct {
	Record []byte   `json:"record,omitempty"`
	Path   string   `json:"path,omitempty"`
	Commit string   `json:"commit,omitempty"`
	Notes  []string `json:"notes,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// ErrHubAppend means the hub did not record an append: none answered in
// time, NATS refused the request, or the hub could not commit or push it.
// The operator's meta then appends directly, with the same event id.
var ErrHubAppend = errors.New("the hub did not record the append")

// RequestAppend hands req to the hub on the NATS server o names and waits
// for its answer until ctx ends.
func RequestAppend(ctx context.Context, o Options, req AppendRequest) (AppendReply, error) {
	var reply AppendReply
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, AppendBudget)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	req.Deadline = dl.UnixMilli()
	// NATS says a publish it does not permit asynchronously, and drops it:
	// stop waiting for an answer that cannot come.
	ctx, refused := context.WithCancelCause(ctx)
	defer refused(nil)
	data, err := json.Marshal(req)
	if err != nil {
		return reply, err
	}
	opts := append([]nats.Option{nats.Name("meta append"), nats.Timeout(o.ConnectTimeout), nats.MaxReconnects(0),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { refused(err) })}, o.NATSOptions...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return reply, fmt.Errorf("%w: connect to NATS at %s: %w", ErrHubAppend, DisplayURL(o.URL), err)
	}
	defer nc.Close()
	msg, err := nc.RequestWithContext(ctx, AppendSubject, data)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
			err = cause // what the server said, e.g. a permissions violation
		} else if last := nc.LastError(); last != nil && !errors.Is(err, nats.ErrNoResponders) {
			err = last
		}
		return reply, fmt.Errorf("%w at %s: %w", ErrHubAppend, DisplayURL(o.URL), err)
	}
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return reply, fmt.Errorf("%w: its answer is not JSON: %w", ErrHubAppend, err)
	}
	if reply.Error != "" {
		return reply, fmt.Errorf("%w: %s", ErrHubAppend, reply.Error)
	}
	return reply, nil
}

// AppendBudget is how long an operator's meta waits for the hub before it
// appends directly: long enough for a group commit under a burst (a fetch,
// the commits, one push), short enough that a wedged hub costs little.
const AppendBudget = 5 * time.Second
