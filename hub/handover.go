package hub

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Handed is what Append did.
type Handed struct {
	*store.Appended
	// ViaHub says the hub recorded the event; else this clone did.
	ViaHub bool
	// Notes are what the hub said of it (a new app's placement).
	Notes []string
	// HubErr is why the hub did not, when it was asked.
	HubErr error
}

// Append is an operator's append: handed to the hub on the NATS server o
// names (o.URL empty: none) for its group commit when the log is one a hub
// may commit for (store.Grouped: unsigned) and the append is online; else,
// or when the hub does not record it within notify.AppendBudget (down, no
// responder, NATS refusing the credentials, a push that failed), appended
// directly on s. Both paths record the same event id, so an event the hub
// committed but whose answer was lost is not recorded twice.
func Append(ctx context.Context, s *store.Store, o notify.Options, ev *metav1.Event, actor *metav1.Actor, now time.Time, opts store.AppendOptions) (*Handed, error) {
	if o.URL == "" || opts.Offline || !s.Grouped() {
		out, err := s.Append(ctx, ev, actor, now, opts)
		return &Handed{Appended: out}, err
	}
	opts.ID = record.NewID(now)
	h, herr := handOver(ctx, o, ev, actor, opts)
	if herr == nil {
		return h, nil
	}
	if !errors.Is(herr, notify.ErrHubAppend) {
		return nil, herr
	}
	out, err := s.Append(ctx, ev, actor, now, opts)
	return &Handed{Appended: out, HubErr: herr}, err
}

// handOver asks the hub to record ev with the id opts.ID, and waits for it
// to be committed and pushed.
func handOver(ctx context.Context, o notify.Options, ev *metav1.Event, actor *metav1.Actor, opts store.AppendOptions) (*Handed, error) {
	req, err := record.NewHandover(ev, actor, opts.ID, opts.Server, opts.Expect, opts.Force, time.Time{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, notify.AppendBudget)
	defer cancel()
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = time.Second
	}
	reply, err := notify.RequestAppend(ctx, o, req)
	if err != nil {
		return nil, err
	}
	got := &metav1.Event{}
	if err := proto.Unmarshal(reply.Record, got); err != nil || got.GetId() != opts.ID {
		return nil, errors.Join(notify.ErrHubAppend, errors.New("the hub answered with another event"), err)
	}
	out := &store.Appended{Written: &store.Written{Events: []*metav1.Event{got}, Paths: []string{reply.Path}, Commit: reply.Commit, Pushed: true}, Event: got, Path: reply.Path}
	return &Handed{Appended: out, ViaHub: true, Notes: reply.Notes}, nil
}
