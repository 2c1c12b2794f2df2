// Package notifytest runs a real NATS server with JetStream inside a test.
package notifytest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server starts an embedded NATS server with JetStream on a free loopback
// port, its data in the test's temporary directory, and stops it when the
// test ends.
func Server(t testing.TB) *server.Server {
	t.Helper()
	return start(t, options(t, -1))
}

func options(t testing.TB, port int) *server.Options {
	return &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
}

func start(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Outage is an embedded NATS server with JetStream that a test stops and
// starts again, on the same port with the same data, as a server that goes
// away and comes back does. It is not running until Start.
type Outage struct {
	t    testing.TB
	opts *server.Options
	mu   sync.Mutex
	srv  *server.Server
}

// NewOutage picks a free loopback port and a data directory for a server
// that Start starts.
func NewOutage(t testing.TB) *Outage {
	t.Helper()
	return &Outage{t: t, opts: options(t, FreePort(t))}
}

// URL is where the server listens, running or not.
func (o *Outage) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", o.opts.Port) }

// Start starts the server and waits until it takes connections.
func (o *Outage) Start() {
	o.t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.srv != nil {
		o.t.Fatal("NATS server started twice")
	}
	opts := *o.opts
	o.srv = start(o.t, &opts)
}

// Stop shuts the server down and waits until it is gone.
func (o *Outage) Stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.srv != nil {
		o.srv.Shutdown()
		o.srv.WaitForShutdown()
		o.srv = nil
	}
}
