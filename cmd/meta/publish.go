package main

import (
	"context"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/notify"
)

// publishBudget bounds what telling the hub may add to an append: NATS
// being down, or refusing, never fails an append, and slows it by at most
// this.
const publishBudget = 2 * time.Second

// nudgeHub tells the hub, when a NATS server is configured, that the log
// has something new: a nudge, which carries no event. The hub fetches,
// reads git and publishes what it verified there; nothing an operator's
// meta sends can become an event on the stream.
func (e *env) nudgeHub(ctx context.Context) error {
	url, o, err := e.natsOptions()
	if err != nil || url == "" {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, publishBudget)
	defer cancel()
	o.ConnectTimeout = publishBudget / 2
	return notify.Nudge(ctx, o)
}
