package hub

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// serveHub runs a hub on cfg (a new log unless cfg has one; NATS and HTTP
// on free ports) until the test ends.
func serveHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = newLog(t)
	}
	cfg.NATSListen, cfg.HTTPListen, cfg.DataDir, cfg.Poll = "127.0.0.1:0", "127.0.0.1:0", t.TempDir(), time.Hour
	h, stop := runHub(t, cfg)
	t.Cleanup(stop)
	return h
}

// keepAlive is a client connection that made one request and stays open.
type keepAlive struct {
	net.Conn
	r *bufio.Reader
}

// getHealth sends GET /healthz on a new connection and reads the answer,
// leaving the connection open.
func getHealth(t *testing.T, addr string) (*keepAlive, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	k := &keepAlive{c, bufio.NewReader(c)}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("healthz: %s", resp.Status)
	}
	c.SetDeadline(time.Time{})
	return k, nil
}

// closedByServer waits until the server closes c: reading gives EOF (or a
// reset), after whatever answer it sent.
func closedByServer(c net.Conn, within time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(fds)
}

// holdsWithin polls cond until it holds or within passes.
func holdsWithin(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// 500 keep-alive clients that made a request and sit idle hold at most
// the cap of the hub's descriptors, a new client is served at once (the
// longest idle makes way), and the idle timeout closes the rest.
func TestIdleKeepAlivesDoNotPinDescriptors(t *testing.T) {
	const clients, limit, idle = 500, 100, 2 * time.Second
	baseline := openFDs(t)
	h := serveHub(t, Config{HTTPMaxConns: limit, HTTPIdleTimeout: idle})
	addr := h.HTTPAddr()
	conns := make([]*keepAlive, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < clients; i += 20 {
				c, err := getHealth(t, addr)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a client was not served: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	served := time.Since(start)
	now, peak := h.listener.open()
	t.Logf("%d clients served in %s; the hub holds %d connections, at most %d at once", clients, served, now, peak)
	if peak > limit {
		t.Fatalf("%d connections open at once, over the cap of %d", peak, limit)
	}
	if served < idle && now != limit {
		t.Fatalf("%d idle connections held, want the cap, %d", now, limit)
	}
	// At the cap, all idle: a new client is served well before any idle
	// timeout.
	asked := time.Now()
	c, err := getHealth(t, addr)
	if err != nil {
		t.Fatalf("new client at the cap: %v", err)
	}
	c.Close()
	if took := time.Since(asked); took > idle/2 {
		t.Fatalf("new client at the cap waited %s", took)
	}
	// The idle timeout closes every connection: the hub lets go of them
	// all, and each client reads the end.
	if !holdsWithin(idle+3*time.Second, func() bool { now, _ := h.listener.open(); return now == 0 }) {
		now, _ := h.listener.open()
		t.Fatalf("%d connections still open past the idle timeout", now)
	}
	for i, c := range conns {
		if !closedByServer(c, time.Second) {
			t.Fatalf("client %d: connection still open past the idle timeout", i)
		}
		c.Close()
	}
	// What is left open is the hub's own: NATS, its listeners.
	if fds := openFDs(t); fds > baseline+50 {
		t.Fatalf("%d descriptors open, %d before the hub started", fds, baseline)
	}
}

// slowBody sends a webhook's headers and a little of its body, then
// trickles a byte every period (never, if period is 0) until the write
// fails.
func slowBody(addr string, period time.Duration) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_, err = io.WriteString(c, "POST /hooks/github HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nContent-Length: 100000\r\n\r\n{")
	if err != nil {
		c.Close()
		return nil, err
	}
	if period > 0 {
		go func() {
			for {
				time.Sleep(period)
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
	}
	return c, nil
}

// 200 clients that send a body slowly, or never finish it, are cut at
// the read timeout however they trickle, and a normal client is served
// meanwhile.
func TestSlowBodiesAreCutAtTheReadTimeout(t *testing.T) {
	const slow, read = 200, time.Second
	h := serveHub(t, Config{HTTPReadTimeout: read, WebhookSecret: []byte("s")})
	addr := h.HTTPAddr()
	conns := make([]net.Conn, slow)
	start := time.Now()
	for i := range conns {
		var err error
		// Half trickle a byte every 100ms, which per-read deadlines would
		// never cut; half stop after the first byte.
		if conns[i], err = slowBody(addr, time.Duration(i%2)*100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	if !holdsWithin(read/2, func() bool { now, _ := h.listener.open(); return now == slow }) {
		now, _ := h.listener.open()
		t.Fatalf("%d slow connections accepted, want %d", now, slow)
	}
	asked := time.Now()
	c, err := getHealth(t, addr)
	if err != nil {
		t.Fatalf("normal client beside slow bodies: %v", err)
	}
	c.Close()
	t.Logf("normal client served in %s beside %d slow bodies", time.Since(asked), slow)
	if now, _ := h.listener.open(); time.Since(start) < read*8/10 && now < slow {
		t.Fatalf("slow bodies cut before the read timeout: %d left after %s", now, time.Since(start))
	}
	for i, c := range conns {
		if !closedByServer(c, read+3*time.Second-time.Since(start)) {
			t.Fatalf("slow body %d still open %s after it started", i, time.Since(start))
		}
	}
	t.Logf("%d slow bodies cut after %s", slow, time.Since(start))
	if !holdsWithin(time.Second, func() bool { now, _ := h.listener.open(); return now == 0 }) {
		now, _ := h.listener.open()
		t.Fatalf("the hub still holds %d connections", now)
	}
}

// At the cap with nothing idle, a new client waits for a slot rather
// than being refused or going over the cap, and gets one when the read
// timeout cuts a slow body.
func TestAtTheCapANewClientWaitsForRoom(t *testing.T) {
	const limit, read = 5, time.Second
	h := serveHub(t, Config{HTTPMaxConns: limit, HTTPReadTimeout: read, WebhookSecret: []byte("s")})
	for range limit {
		c, err := slowBody(h.HTTPAddr(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if !holdsWithin(read/2, func() bool { now, _ := h.listener.open(); return now == limit }) {
		t.Fatal("slow bodies not accepted")
	}
	asked := time.Now()
	c, err := getHealth(t, h.HTTPAddr())
	if err != nil {
		t.Fatalf("client waiting for room: %v", err)
	}
	c.Close()
	took := time.Since(asked)
	t.Logf("served after %s", took)
	if took < read/4 {
		t.Fatalf("served after %s although every slot was busy", took)
	}
	if _, peak := h.listener.open(); peak > limit {
		t.Fatalf("%d open at once, over the cap of %d", peak, limit)
	}
}
