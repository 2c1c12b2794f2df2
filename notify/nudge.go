package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// SyncSubject is where a client asks the hub to sync now: a nudge. It
// carries nothing the hub reads (whatever a message on it holds is
// ignored): the hub fetches, reads git and verifies through the store, and
// publishes what it finds there, so a nudge can make the hub look sooner
// but never make it say anything.
const SyncSubject = "meta.hub.sync"

// ErrNoHub means nothing on the NATS server listens for nudges: no hub
// runs there (meta serve).
var ErrNoHub = errors.New("no hub answers on NATS")

// Nudge asks the hub on the NATS server o names to sync now, and waits for
// it to say it heard (it syncs after answering), within ctx and
// o.ConnectTimeout.
func Nudge(ctx context.Context, o Options) error {
	opts := append([]nats.Option{nats.Name("meta nudge"), nats.Timeout(o.ConnectTimeout), nats.MaxReconnects(0)}, o.NATSOptions...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", DisplayURL(o.URL), err)
	}
	defer nc.Close()
	if _, err := nc.RequestWithContext(ctx, SyncSubject, nil); err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("%w at %s (is meta serve running?)", ErrNoHub, DisplayURL(o.URL))
		}
		if last := nc.LastError(); last != nil {
			err = last // what the server said, e.g. a permissions violation
		}
		return fmt.Errorf("nudge the hub at %s: %w", DisplayURL(o.URL), err)
	}
	return nil
}
