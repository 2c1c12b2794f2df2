package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// AppendSubject is where an operator's meta hands an event to the hub for
// its group commit (store.AppendGroup): a request, answered once the hub
// committed and pushed the event, or refused. Only the appenders' NATS
// user (and the hub's) may publish to it; followers may not.
const AppendSubject = "meta.hub.append"

// ErrHubAppend means the hub did not record an append: none answered in
// time, NATS refused the request, or the hub could not commit or push it.
// The operator's meta then appends directly, with the same event id.
var ErrHubAppend = errors.New("the hub did not record the append")

// RequestAppend hands req to the hub on the NATS server o names and waits
// for its answer until ctx ends; req's deadline is ctx's.
func RequestAppend(ctx context.Context, o Options, req record.Handover) (record.HandoverReply, error) {
	var reply record.HandoverReply
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
