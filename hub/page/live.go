package page

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// Heartbeat is how often an open page hears from the hub when nothing
// happens: the page's script says the hub is lost when three go missing.
const Heartbeat = 15 * time.Second

// maxLiveApps bounds the apps one change names; past it the change names
// none and every page takes it as concerning it.
const maxLiveApps = 100

// Live tells open pages that the log changed, as server-sent events at
// /events: the hub calls Publish with what it published (appends, its own
// observations, promotions), each open page fetches itself again. A page
// slow to read never holds the hub back: what it has not read yet is
// merged into one change.
type Live struct {
	mu     sync.Mutex
	gen    uint64
	subs   map[*subscriber]struct{}
	closed bool
	// heartbeat is Heartbeat, shorter in tests.
	heartbeat time.Duration
}

// Change is the data of one "change" event: the generation it brings the
// page to, and the apps (project/env/domain) and channels (recipe/channel)
// whose logs grew; when there were too many to name, All is true and both
// are empty ([], never null).
type Change struct {
	Generation uint64   `json:"generation"`
	Apps       []string `json:"apps"`
	Channels   []string `json:"channels"`
	All        bool     `json:"all"`
}

// hello is the first event of a stream: the generation now, and how
// often pings come.
type hello struct {
	Generation  uint64 `json:"generation"`
	HeartbeatMS int64  `json:"heartbeat_ms"`
}

type subscriber struct {
	mu sync.Mutex
	// pending is what the page has yet to hear, named in seen (nil:
	// nothing pending).
	pending *Change
	seen    map[string]bool
	ready   chan struct{} // one slot: a change is pending
	done    chan struct{} // closed by Close
}

// NewLive is a Live with no page open.
func NewLive() *Live {
	return &Live{subs: map[*subscriber]struct{}{}, heartbeat: Heartbeat}
}

// Generation counts the changes published so far.
func (l *Live) Generation() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

// Open counts the pages listening now.
func (l *Live) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs)
}

// Publish tells every open page about events. No events, no change.
func (l *Live) Publish(events []*metav1.Event) {
	if len(events) == 0 {
		return
	}
	c := Change{Apps: []string{}, Channels: []string{}}
	seen := map[string]bool{}
	for _, ev := range events {
		a := ev.GetAddress()
		name, list := a.GetProject()+"/"+a.GetEnv()+"/"+a.GetApp(), &c.Apps
		if a.GetProject() == "_recipes" {
			name, list = a.GetEnv()+"/"+a.GetApp(), &c.Channels
		}
		if !seen[name] {
			seen[name] = true
			*list = append(*list, name)
		}
	}
	if len(seen) > maxLiveApps {
		c = Change{Apps: []string{}, Channels: []string{}, All: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.gen++
	c.Generation = l.gen
	for s := range l.subs {
		s.add(c)
	}
}

// add merges c into what s has yet to send, and wakes s. Once there are
// too many names to send, it stays "all" until s takes it.
func (s *subscriber) add(c Change) {
	s.mu.Lock()
	if s.pending == nil {
		s.pending, s.seen = &Change{Apps: []string{}, Channels: []string{}}, map[string]bool{}
	}
	p := s.pending
	p.Generation = c.Generation
	switch {
	case p.All:
	case c.All || len(s.seen)+len(c.Apps)+len(c.Channels) > maxLiveApps && s.overflows(c):
		p.Apps, p.Channels, p.All, s.seen = []string{}, []string{}, true, nil
	default:
		for _, pair := range []struct{ to, from *[]string }{{&p.Apps, &c.Apps}, {&p.Channels, &c.Channels}} {
			for _, n := range *pair.from {
				if !s.seen[n] {
					s.seen[n] = true
					*pair.to = append(*pair.to, n)
				}
			}
		}
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// overflows says c's names, with those pending, are more than a change
// names.
func (s *subscriber) overflows(c Change) bool {
	n := len(s.seen)
	for _, list := range [][]string{c.Apps, c.Channels} {
		for _, name := range list {
			if !s.seen[name] {
				n++
			}
		}
	}
	return n > maxLiveApps
}

func (s *subscriber) take() *Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.pending
	s.pending, s.seen = nil, nil
	return c
}

// Close ends every open page's stream (their scripts reconnect to the
// next hub) and takes no more: a server shutting down is not held up by
// streams that never end on their own.
func (l *Live) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	for s := range l.subs {
		close(s.done)
		delete(l.subs, s)
	}
}

// writeWait is how long one event may take to reach a page; a page that
// reads nothing for this long is dropped (its script reconnects).
const writeWait = 10 * time.Second

// ServeHTTP is the stream of one open page: a "hello" event with the
// generation now (a page rendered before it asks again), then a "change"
// per Publish (merged while the page is slow) and a "ping" every
// heartbeat, until the page goes or the hub stops.
func (l *Live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for requests that end; a
	// stream does not, so each write gets its own deadline instead.
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		http.Error(w, "this server cannot stream events", http.StatusInternalServerError)
		return
	}
	s := &subscriber{ready: make(chan struct{}, 1), done: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		http.Error(w, "the hub is stopping", http.StatusServiceUnavailable)
		return
	}
	l.subs[s] = struct{}{}
	gen := l.gen
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.subs, s)
		l.mu.Unlock()
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	send := func(event string, data any) bool {
		b, err := json.Marshal(data)
		if err != nil {
			return false
		}
		rc.SetWriteDeadline(time.Now().Add(writeWait))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// retry: how long the browser waits before it reconnects by itself.
	rc.SetWriteDeadline(time.Now().Add(writeWait))
	fmt.Fprintf(w, "retry: 2000\n")
	if !send("hello", hello{Generation: gen, HeartbeatMS: l.heartbeat.Milliseconds()}) {
		return
	}
	// still: the viewer may still see the page (a removed token ends the
	// stream at the next event or ping; the page then finds itself
	// signed out).
	still := viewerOf(r).Still
	if still == nil {
		still = func() bool { return true }
	}
	tick := time.NewTicker(l.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-s.ready:
			if c := s.take(); c != nil && (!still() || !send("change", c)) {
				return
			}
		case <-tick.C:
			if !still() || !send("ping", map[string]uint64{"generation": l.Generation()}) {
				return
			}
		}
	}
}
