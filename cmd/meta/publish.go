package main

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// publishBudget bounds what telling NATS may add to an append: NATS being
// down never fails an append, and slows it by at most this.
const publishBudget = 2 * time.Second

// publish announces ev on NATS when a server is configured.
func (e *env) publish(ctx context.Context, s *store.Store, ev *metav1.Event) error {
	url := firstNonEmpty(e.natsURL, e.getenv("META_NATS_URL"))
	if url == "" {
		return nil
	}
	var opts []nats.Option
	if creds := firstNonEmpty(e.natsCreds, e.getenv("META_NATS_CREDS")); creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	ctx, cancel := context.WithTimeout(ctx, publishBudget)
	defer cancel()
	p, err := notify.Connect(ctx, notify.Options{URL: url, Source: s.Source(ctx), ConnectTimeout: publishBudget / 2, NATSOptions: opts})
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Publish(ctx, ev)
}
