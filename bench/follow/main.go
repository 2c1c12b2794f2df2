// Command follow measures followers on loopback, in one run, through a
// hub whose embedded NATS requires credentials (the follower uses the
// followers' read-only key): the latency from an append returning (write,
// commit, nudge the hub) to a durable follower receiving the event the
// hub read from git, for N appends one after another (their nudges
// coalesce) and for appends a quiet spell apart; and how long a follower
// that missed a 10,000-event log takes to receive all of it through the
// hub.
//
//	go run ./bench/follow [-n 200] [-dir bench/out]
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

	"github.com/nats-io/nats.go"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/hub"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

func main() {
	n := flag.Int("n", 200, "events for the latency run")
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
	// 1. Latency: append, nudge, the hub publishes, the follower receives.
	s, err := store.Init(filepath.Join(tmp, "log"), store.InitOptions{Project: "bench", Env: "prod", Operator: store.Signature{Name: "Bench", When: time.Now()}})
	if err != nil {
		return err
	}
	h1, err := hub.New(ctx, hub.Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: filepath.Join(tmp, "nats1"), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
	if err != nil {
		return err
	}
	hctx, hstop := context.WithCancel(ctx)
	defer hstop()
	go h1.Run(hctx)
	asFollower, err := follower(h1)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	received := map[string]time.Time{}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go notify.Follow(fctx, notify.FollowOptions{Options: asFollower, Name: "latency", Filter: "meta.events.>", FromStart: true},
		func(ev *metav1.Event) error {
			mu.Lock()
			received[ev.GetId()] = time.Now()
			mu.Unlock()
			return nil
		})
	actor := &metav1.Actor{Name: "Bench"}
	measure := func(what string, n int, pause time.Duration) error {
		returned := map[string]time.Time{}
		for i := 0; i < n; i++ {
			time.Sleep(pause)
			a, err := s.Append(ctx, &metav1.Event{Kind: metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Message: "bench", Address: &metav1.Address{App: fixture.App(i % 10)}}, actor, time.Now(), store.AppendOptions{})
			if err != nil {
				return err
			}
			if err := notify.Nudge(ctx, asFollower); err != nil {
				return err
			}
			returned[a.Event.GetId()] = time.Now()
		}
		deadline := time.Now().Add(time.Minute)
		var lat []time.Duration
		for len(lat) < n {
			if time.Now().After(deadline) {
				return fmt.Errorf("follower received %d of %d", len(lat), n)
			}
			time.Sleep(10 * time.Millisecond)
			lat = lat[:0]
			mu.Lock()
			for id, t := range returned {
				if r, ok := received[id]; ok {
					lat = append(lat, max(r.Sub(t), 0))
				}
			}
			mu.Unlock()
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Printf("latency, append returned -> follower received, %d events %s: p50 %s  p99 %s  max %s\n",
			n, what, lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
		return nil
	}
	if err := measure("one after another", n, 0); err != nil {
		return err
	}
	if err := measure("a second apart", 10, time.Second); err != nil {
		return err
	}
	stop()
	hstop()

	// 2. Catch-up: a 10,000-event log the stream has never seen.
	dir, err := fixture.Cached(out, 100, 100)
	if err != nil {
		return err
	}
	big, err := store.Open(dir)
	if err != nil {
		return err
	}
	h, err := hub.New(ctx, hub.Config{Store: big, NATSListen: "127.0.0.1:0", DataDir: filepath.Join(tmp, "nats2"), HTTPListen: "127.0.0.1:0"})
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
	asFollower, err = follower(h)
	if err != nil {
		return err
	}
	go notify.Follow(cctx, notify.FollowOptions{Options: asFollower, Name: "catchup", Filter: "meta.events.bench.>", FromStart: true},
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

// follower is how a follower reaches h's NATS: with the followers' key.
func follower(h *hub.Hub) (notify.Options, error) {
	opt, err := nats.NkeyOptionFromSeed(h.FollowerSeed())
	if err != nil {
		return notify.Options{}, err
	}
	return notify.Options{URL: h.NATSURL(), ConnectTimeout: time.Second, NATSOptions: []nats.Option{opt}}, nil
}
