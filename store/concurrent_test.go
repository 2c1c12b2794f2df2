package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// One Store serves goroutines of its own (the hub's observer, its group,
// its HTTP API and its catch-up): writes beside writes and reads beside
// writes must not race (go test -race), and every write lands.
func TestOneStoreServesGoroutines(t *testing.T) {
	s := join(t, bareRemote(t))
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	const n = 5
	var wg sync.WaitGroup
	errs := make(chan error, 16*n)
	for w, offline := range []bool{false, true} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				ev := deploy(fmt.Sprintf("w%d.example.com", w), fmt.Sprintf("1.0.%d", i))
				if _, err := s.Append(context.Background(), ev, alice, time.Now(), AppendOptions{Offline: offline}); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2 * n {
			_ = s.Config().Engines()
			_ = s.Grouped()
			_ = s.RemoteTip()
			if _, err := s.Head("a.example.com"); err != nil {
				errs <- fmt.Errorf("head: %w", err)
			}
			if _, err := s.Log("a.example.com", 0); err != nil {
				errs <- fmt.Errorf("log: %w", err)
			}
			if _, err := s.List(); err != nil {
				errs <- fmt.Errorf("list: %w", err)
			}
			if _, err := s.Status(context.Background()); err != nil {
				errs <- fmt.Errorf("status: %w", err)
			}
			if _, _, _, err := s.Since(context.Background(), ""); err != nil {
				errs <- fmt.Errorf("since: %w", err)
			}
			_ = s.Notes()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range 2 {
		if h, err := s.Head(fmt.Sprintf("w%d.example.com", w)); err != nil || h.Version != fmt.Sprintf("1.0.%d", n-1) {
			t.Errorf("w%d: head %+v, %v; want 1.0.%d", w, h, err, n-1)
		}
	}
}
