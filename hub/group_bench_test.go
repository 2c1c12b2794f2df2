package hub

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// BenchmarkAppendsToRemote measures appends reaching a bare remote per
// second with 1, 4, 16 and 32 writers, each its own clone, directly and
// through one hub's group commit; an append left unpushed after its
// retries (the direct path under contention) does not count. Run it with
// a fixed count, e.g.
//
//	go test -run - -bench AppendsToRemote -benchtime 128x ./hub/
func BenchmarkAppendsToRemote(b *testing.B) {
	for _, path := range []string{"direct", "hub"} {
		for _, writers := range []int{1, 4, 16, 32} {
			b.Run(fmt.Sprintf("%s/writers=%d", path, writers), func(b *testing.B) {
				l := newRemoteLog(b)
				clones := make([]*store.Store, writers)
				for i := range clones {
					clones[i] = l.clone(b)
				}
				o := notify.Options{}
				if path == "hub" {
					h, stop := runHub(b, Config{Store: l.clone(b), NATSListen: "127.0.0.1:0", DataDir: b.TempDir(), HTTPListen: "127.0.0.1:0", Poll: time.Hour})
					defer stop()
					o = seedOptions(b, h, h.AppenderSeed())
				}
				var next atomic.Int64
				var direct, unpushed atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							ev := &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
								Version: fmt.Sprintf("1.0.%d", i), Address: &metav1.Address{App: fmt.Sprintf("app%d.example.com", w)}}
							r, err := Append(context.Background(), clones[w], o, ev, operator(w), time.Now(), store.AppendOptions{})
							if err != nil {
								b.Error(err)
								return
							}
							if !r.Pushed {
								// Lost every push race of its retries: committed
								// in its clone, for its next sync to push.
								unpushed.Add(1)
							}
							if path == "hub" && !r.ViaHub {
								direct.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(int64(b.N)-unpushed.Load())/elapsed.Seconds(), "appends/s")
				b.ReportMetric(float64(unpushed.Load()), "unpushed")
				if path == "hub" {
					b.ReportMetric(float64(direct.Load()), "fell-back")
				}
			})
		}
	}
}
