package main

import (
	"context"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// publishBudget bounds what telling NATS may add to an append: NATS being
// down never fails an append, and slows it by at most this.
const publishBudget = 2 * time.Second

// publish announces ev on NATS when a server is configured.
func (e *env) publish(ctx context.Context, s *store.Store, ev *metav1.Event) error {
	url, o := e.natsOptions()
	if url == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, publishBudget)
	defer cancel()
	o.Source, o.ConnectTimeout = s.Source(ctx), publishBudget/2
	p, err := notify.Connect(ctx, o)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Publish(ctx, ev)
}
