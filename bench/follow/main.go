// Command follow measures followers on loopback, in one run: the latency
// from an append returning (write, commit, announce on NATS) to a durable
// follower receiving the event, over N events, and how long a follower
// that missed a 10,000-event log takes to receive all of it through the hub.
//
//	go run ./bench/follow [-n 1000] [-dir bench/out]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/hub"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

func main() {
	n := flag.Int("n", 1000, "events for the latency run")
	out := flag.String("dir", "bench/out", "where logs are kept")
	flag.Parse()
	if err := run(*n, *out); err != nil {
		fmt.Fprintln(os.Stderr, "follow:", err)
		os.Exit(1)
	}
}

func run(n int, out string) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "meta-follow")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(tmp, "nats"), NoSigs: true, NoLog: true})
	if err != nil {
		return err
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats did not start")
	}
	defer srv.Shutdown()

	// 1. Latency: append (with publish), follower receives.
	s, err := store.Init(filepath.Join(tmp, "log"), store.InitOptions{Project: "bench", Env: "prod", Operator: store.Signature{Name: "Bench", When: time.Now()}})
	if err != nil {
		return err
	}
	pub, err := notify.Connect(ctx, notify.Options{URL: srv.ClientURL(), Source: "bench", ConnectTimeout: time.Second})
	if err != nil {
		return err
	}
	defer pub.Close()
	var mu sync.Mutex
	received := map[string]time.Time{}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go notify.Follow(fctx, notify.FollowOptions{Options: notify.Options{URL: srv.ClientURL(), ConnectTimeout: time.Second}, Name: "latency", Filter: "meta.events.>", FromStart: true},
		func(ev *metav1.Event) error {
			mu.Lock()
			received[ev.GetId()] = time.Now()
			mu.Unlock()
			return nil
		})
	actor := &metav1.Actor{Name: "Bench"}
	returned := map[string]time.Time{}
	for i := 0; i < n; i++ {
		a, err := s.Append(ctx, &metav1.Event{Kind: metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Message: "bench", Address: &metav1.Address{App: fixture.App(i % 10)}}, actor, time.Now(), store.AppendOptions{})
		if err != nil {
			return err
		}
		if err := pub.Publish(ctx, a.Event); err != nil {
			return err
		}
		returned[a.Event.GetId()] = time.Now()
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		got := len(received)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("follower received %d of %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	var lat []time.Duration
	for id, t := range returned {
		d := received[id].Sub(t)
		if d < 0 {
			d = 0 // the follower had it before the append returned
		}
		lat = append(lat, d)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("latency, append returned -> follower received, %d events: p50 %s  p99 %s  max %s\n",
		n, lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))

	// 2. Catch-up: a 10,000-event log the stream has never seen.
	dir, err := fixture.Cached(out, 100, 100)
	if err != nil {
		return err
	}
	big, err := store.Open(dir)
	if err != nil {
		return err
	}
	h, err := hub.New(ctx, hub.Config{Store: big, NATSURL: srv.ClientURL(), HTTPListen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer h.Close()
	start := time.Now()
	published, err := h.CatchUp(ctx)
	if err != nil {
		return err
	}
	publishTime := time.Since(start)
	count := 0
	done := make(chan struct{})
	cctx, cstop := context.WithCancel(ctx)
	defer cstop()
	start = time.Now()
	go notify.Follow(cctx, notify.FollowOptions{Options: notify.Options{URL: srv.ClientURL(), ConnectTimeout: time.Second}, Name: "catchup", Filter: "meta.events.bench.>", FromStart: true},
		func(ev *metav1.Event) error {
			if count++; count == published {
				close(done)
			}
			return nil
		})
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("catch-up follower received %d of %d", count, published)
	}
	cstop()
	fmt.Printf("catch-up of %d events: hub published them in %s, a new follower received them all in %s\n",
		published, publishTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return nil
}
