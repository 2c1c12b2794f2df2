package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// appendEvent appends ev through the hub's group commit when a hub is
// configured (--nats-url with an appender's --nats-nkey) and the log is one
// a hub may commit for (store.Grouped: unsigned), else, or when the hub
// does not record it, directly. Both paths record the same event id, so a
// hub that committed it but whose answer was lost does not make it twice.
// viaHub says the hub recorded it.
func (e *env) appendEvent(ctx context.Context, s *store.Store, ev *metav1.Event, actor *metav1.Actor, now time.Time, opts store.AppendOptions) (out *store.Appended, viaHub bool, err error) {
	url, o, err := e.natsOptions()
	if err != nil || url == "" || opts.Offline || !s.Grouped() || e.getenv("META_NO_HUB") == "1" {
		out, err := s.Append(ctx, ev, actor, now, opts)
		return out, false, err
	}
	opts.ID = record.NewID(now)
	out, err = e.handToHub(ctx, o, ev, actor, opts)
	if err == nil {
		return out, true, nil
	}
	if !errors.Is(err, notify.ErrHubAppend) {
		return nil, false, err
	}
	out, err = s.Append(ctx, ev, actor, now, opts)
	return out, false, err
}

// handToHub asks the hub to record ev with the id opts.ID, and waits for it
// to be committed and pushed, at most notify.AppendBudget.
func (e *env) handToHub(ctx context.Context, o notify.Options, ev *metav1.Event, actor *metav1.Actor, opts store.AppendOptions) (*store.Appended, error) {
	evData, err := proto.Marshal(ev)
	if err != nil {
		return nil, err
	}
	actorData, err := proto.Marshal(actor)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, notify.AppendBudget)
	defer cancel()
	o.ConnectTimeout = publishBudget / 2
	reply, err := notify.RequestAppend(ctx, o, notify.AppendRequest{Event: evData, Actor: actorData, ID: opts.ID, Server: opts.Server, Expect: opts.Expect, Force: opts.Force})
	if err != nil {
		return nil, err
	}
	got := &metav1.Event{}
	if err := proto.Unmarshal(reply.Record, got); err != nil || got.GetId() != opts.ID {
		return nil, errors.Join(notify.ErrHubAppend, errors.New("the hub answered with another event"), err)
	}
	for _, n := range reply.Notes {
		fmt.Fprintf(e.stderr, "meta: %s\n", message(n))
	}
	out := &store.Appended{Written: &store.Written{Events: []*metav1.Event{got}, Paths: []string{reply.Path}, Commit: reply.Commit, Pushed: true}, Event: got, Path: reply.Path}
	return out, nil
}
