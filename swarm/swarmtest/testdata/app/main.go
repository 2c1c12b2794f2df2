// Command app is the program the swarm tests run in their stacks, in an
// image built FROM scratch (no registry is reachable in CI). It serves
// nothing and sleeps until SIGTERM or SIGINT, when it exits 0 at once.
//
// CRASH_AFTER=2s makes it exit 1 after that long: a task that fails
// Swarm's update monitor, or crash-loops. `app health` is its health
// check (HEALTHCHECK ["CMD", "/app", "health"]): it exits 0, or 1 when
// UNHEALTHY=1.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "health" {
		if os.Getenv("UNHEALTHY") == "1" {
			fmt.Fprintln(os.Stderr, "unhealthy: UNHEALTHY=1")
			os.Exit(1)
		}
		os.Exit(0)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	var crash <-chan time.Time
	if s := os.Getenv("CRASH_AFTER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "CRASH_AFTER=%q: %v\n", s, err)
			os.Exit(2)
		}
		crash = time.After(d)
	}
	select {
	case <-stop:
		os.Exit(0)
	case <-crash:
		fmt.Fprintf(os.Stderr, "crashing as CRASH_AFTER=%s says\n", os.Getenv("CRASH_AFTER"))
		os.Exit(1)
	}
}
