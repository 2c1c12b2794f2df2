package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// fixtureDir keeps built logs between benchmark runs: the 100k one takes
// about a minute to build. META_BENCH_DIR moves it.
func fixtureDir(b *testing.B, apps, perApp int) string {
	b.Helper()
	base := os.Getenv("META_BENCH_DIR")
	if base == "" {
		base = filepath.Join(os.TempDir(), "meta-bench")
	}
	dir, err := fixture.Cached(base, apps, perApp)
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkAppend appends one event (write, fsync, commit, index update)
// to an app with 100 events, in logs of 1k, 10k and 100k events in all.
func BenchmarkAppend(b *testing.B) {
	actor := &metav1.Actor{Name: "Bench", Email: "bench@example.com"}
	for _, total := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("events=%d", total), func(b *testing.B) {
			dir := fixtureDir(b, total/100, 100)
			s, err := store.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			ev := &metav1.Event{Kind: metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Message: "bench", Address: &metav1.Address{App: fixture.App(1)}}
			s.Head(fixture.App(1)) // warm the cache, as any earlier command would
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Append(context.Background(), ev, actor, time.Now(), store.AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHead folds an app of 10, 1k and 10k events, from a warm cache
// (the normal case) and with the cache deleted (the first read after a
// clone).
func BenchmarkHead(b *testing.B) {
	for _, n := range []int{10, 1_000, 10_000} {
		dir := fixtureDir(b, 1, n)
		s, err := store.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("events=%d/warm", n), func(b *testing.B) {
			s.Head(fixture.App(0))
			for i := 0; i < b.N; i++ {
				if h, err := s.Head(fixture.App(0)); err != nil || h.Events != n {
					b.Fatal(h, err)
				}
			}
		})
		b.Run(fmt.Sprintf("events=%d/cold", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				os.RemoveAll(filepath.Join(dir, ".git", "meta", "cache"))
				if _, err := s.Head(fixture.App(0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
