package hub

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimiter caps the HTTP server's open connections. At the cap a new
// connection takes the place of the longest-idle keep-alive one, so idle
// clients cannot starve new ones; when none is idle, Accept waits until
// one closes or goes idle, which the server's timeouts bound. Past the
// cap, at most the one connection Accept holds is open.
type connLimiter struct {
	net.Listener
	max int

	mu    sync.Mutex
	freed *sync.Cond // a connection closed or went idle
	// conns are the open connections, each with the time it went idle,
	// zero while it is not idle.
	conns  map[net.Conn]time.Time
	peak   int // the most ever open at once, for tests
	closed bool
}

func newConnLimiter(l net.Listener, max int) *connLimiter {
	c := &connLimiter{Listener: l, max: max, conns: map[net.Conn]time.Time{}}
	c.freed = sync.NewCond(&c.mu)
	return c
}

// Accept takes the next connection, making room for it first.
func (l *connLimiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.conns) >= l.max && !l.closed {
		if idle := l.longestIdle(); idle != nil {
			// Forgotten now, so its StateClosed does not count twice.
			delete(l.conns, idle)
			idle.Close()
			break
		}
		l.freed.Wait()
	}
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = time.Time{}
	l.peak = max(l.peak, len(l.conns))
	return c, nil
}

func (l *connLimiter) longestIdle() net.Conn {
	var oldest net.Conn
	var since time.Time
	for c, t := range l.conns {
		if !t.IsZero() && (oldest == nil || t.Before(since)) {
			oldest, since = c, t
		}
	}
	return oldest
}

// track is the server's ConnState hook: it keeps what is idle since when,
// and forgets what closed.
func (l *connLimiter) track(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.conns[c]; !ok {
		return // made way for a new one already
	}
	switch state {
	case http.StateIdle:
		l.conns[c] = time.Now()
		l.freed.Signal()
	case http.StateActive:
		l.conns[c] = time.Time{}
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
		l.freed.Signal()
	}
}

// Close stops accepting, also an Accept waiting for room.
func (l *connLimiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.freed.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// open is how many connections are open, and the most ever at once.
func (l *connLimiter) open() (now, peak int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns), l.peak
}
