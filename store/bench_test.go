package store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
	"git.coopcloud.tech/coop-cloud/meta/store/signing/signingtest"
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

// BenchmarkAppendSigning appends to an app of a 10k-event log, unsigned
// and signed with an ed25519 key held only by a real ssh-agent, in turns,
// so that both see the same machine. A signed append pays what a meta
// process does: connect to the agent, find the key, sign. It reports the
// medians and their difference (the budget is 5 ms).
func BenchmarkAppendSigning(b *testing.B) {
	actor := &metav1.Actor{Name: "Bench", Email: "bench@example.com"}
	dir := fixtureDir(b, 100, 100)
	s, err := store.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	key := signingtest.Keygen(b, b.TempDir(), "bench", "")
	agent := signingtest.StartAgent(b)
	agent.Add(b, key)
	ev := &metav1.Event{Kind: metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Message: "bench", Address: &metav1.Address{App: fixture.App(1)}}
	s.Head(fixture.App(1))
	b.ResetTimer()
	appendPlain := func() {
		s.SetSigner(nil)
		if _, err := s.Append(context.Background(), ev, actor, time.Now(), store.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	appendSigned := func(check bool) {
		a, err := signing.DialAgent(agent.Sock)
		if err != nil {
			b.Fatal(err)
		}
		defer a.Close()
		signer, err := a.Signer(key.Pub)
		if err != nil {
			b.Fatal(err)
		}
		s.SetSigner(signer)
		out, err := s.Append(context.Background(), ev, actor, time.Now(), store.AppendOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if check && !signing.Same(signedWith(b, dir, out.Commit), key.Pub) {
			b.Fatal("the signed append is not signed")
		}
	}
	timed := func(f func()) time.Duration { t0 := time.Now(); f(); return time.Since(t0) }
	var plain, signed []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Which goes first alternates: the second of two appends in a
		// row is not the same as the first.
		if i%2 == 0 {
			plain = append(plain, timed(appendPlain))
			signed = append(signed, timed(func() { appendSigned(i == 0) }))
		} else {
			signed = append(signed, timed(func() { appendSigned(false) }))
			plain = append(plain, timed(appendPlain))
		}
	}
	b.StopTimer()
	p, q := median(plain), median(signed)
	b.ReportMetric(float64(p.Microseconds())/1000, "unsigned-ms")
	b.ReportMetric(float64(q.Microseconds())/1000, "agent-signed-ms")
	b.ReportMetric(float64((q-p).Microseconds())/1000, "delta-ms")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// signedWith is the key that signed commit h, by the git CLI's copy of it.
func signedWith(b *testing.B, dir, h string) ssh.PublicKey {
	raw, err := exec.Command("git", "-C", dir, "cat-file", "commit", h).Output()
	if err != nil {
		b.Fatal(err)
	}
	payload, sig := signing.Split(raw)
	k, err := signing.Verify(payload, sig)
	if err != nil {
		b.Fatal(err)
	}
	return k
}
