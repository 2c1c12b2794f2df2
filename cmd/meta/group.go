package main

import (
	"context"
	"fmt"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/hub"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// appendEvent appends ev through the hub's group commit when a hub is
// configured (--nats-url with an appender's --nats-nkey; META_NO_HUB=1
// says not to) and its log is unsigned, else directly (hub.Append).
// viaHub says the hub recorded it.
func (e *env) appendEvent(ctx context.Context, s *store.Store, ev *metav1.Event, actor *metav1.Actor, now time.Time, opts store.AppendOptions) (out *store.Appended, viaHub bool, err error) {
	url, o, err := e.natsOptions()
	if err != nil || url == "" || e.getenv("META_NO_HUB") == "1" {
		// Credentials that cannot be read cost the hand-over, not the
		// append: it takes the direct path, and the nudge after it says
		// what is wrong with them, as it always has.
		o.URL = ""
	}
	o.ConnectTimeout = publishBudget / 2
	h, err := hub.Append(ctx, s, o, ev, actor, now, opts)
	if err != nil {
		return nil, false, err
	}
	for _, n := range h.Notes {
		fmt.Fprintf(e.stderr, "meta: %s\n", message(n))
	}
	return h.Appended, h.ViaHub, nil
}
