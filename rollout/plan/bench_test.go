package plan_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// fleet is a log of apps apps, each of 10 events, following one channel
// a release ahead of them all (fixture.BuildFleet), kept between runs
// under META_BENCH_DIR.
func fleet(tb testing.TB, apps int) string {
	tb.Helper()
	dir, err := fixture.CachedFleet(fixture.BenchDir(), apps, 10)
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

// The fleet fixture plans as it says: every app upgrades, and the log
// holds nothing meta would quarantine.
func TestFleetFixturePlans(t *testing.T) {
	s, err := store.Open(fleet(t, 20))
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Of(s, plan.Options{Now: time.Now(), WaveSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if p.Counts.Upgrade != 20 || len(p.Waves) != 4 || p.Apps[0].ChannelVersion != "1.10.0+2.0.0" || p.Apps[0].LogVersion != "1.9.0+2.0.0" {
		t.Fatalf("counts %+v, %d waves, first %+v", p.Counts, len(p.Waves), p.Apps[0])
	}
	if v, err := s.Verify(context.Background(), nil); err != nil || len(v.Findings) != 0 {
		t.Fatalf("verify: %+v, %v", v, err)
	}
}

// BenchmarkPlan plans 1,000 apps: warm (heads memoised in the cache, as
// after any read) and cold (the cache emptied before each plan).
func BenchmarkPlan(b *testing.B) {
	dir := fleet(b, 1000)
	s, err := store.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	o := plan.Options{Now: time.Now(), WaveSize: 10}
	if _, err := plan.Of(s, o); err != nil {
		b.Fatal(err)
	}
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if p, err := plan.Of(s, o); err != nil || p.Counts.Upgrade != 1000 {
				b.Fatalf("%+v, %v", p.Counts, err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if err := os.RemoveAll(filepath.Join(s.MetaDir(), "cache")); err != nil {
				b.Fatal(err)
			}
			cold, err := store.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if p, err := plan.Of(cold, o); err != nil || p.Counts.Upgrade != 1000 {
				b.Fatalf("%+v, %v", p.Counts, err)
			}
		}
	})
}
