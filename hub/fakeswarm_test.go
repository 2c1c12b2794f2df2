package hub

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/swarm"
	"git.coopcloud.tech/coop-cloud/meta/swarm/swarmtest"
)

// fakeSwarm is a Docker Engine in memory, behind the swarm.Engine
// contract: tests set what its stacks are, say that they changed, and cut
// it off and back.
type fakeSwarm struct {
	mu     sync.Mutex
	stacks map[string]*swarm.Stack
	down   bool
	dials  []time.Time
	looks  int
	conns  []*fakeEngine
	host   string
}

func newFakeSwarm(host string) *fakeSwarm {
	return &fakeSwarm{stacks: map[string]*swarm.Stack{}, host: host}
}

func (f *fakeSwarm) dial(ctx context.Context, h swarm.Host) (swarm.Engine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials = append(f.dials, time.Now())
	if f.down {
		return nil, fmt.Errorf("%w: dial unix /run/docker.sock: connect: connection refused", swarm.ErrUnreachable)
	}
	e := &fakeEngine{f: f, changes: make(chan string, 64), errs: make(chan error, 1)}
	f.conns = append(f.conns, e)
	return e, nil
}

// set makes stack what the Engine runs (no services: gone), and tells the
// event streams.
func (f *fakeSwarm) set(st *swarm.Stack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st.Missing() {
		delete(f.stacks, st.Name)
	} else {
		f.stacks[st.Name] = st
	}
	for _, c := range f.conns {
		select {
		case c.changes <- st.Name:
		default:
		}
	}
}

// cut breaks every stream and refuses dials until restore.
func (f *fakeSwarm) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	for _, c := range f.conns {
		c.errs <- fmt.Errorf("%w: unexpected EOF", swarm.ErrUnreachable)
	}
	f.conns = nil
}

func (f *fakeSwarm) restore() {
	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
}

func (f *fakeSwarm) dialTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dials)
}

type fakeEngine struct {
	f       *fakeSwarm
	changes chan string
	errs    chan error
}

func (e *fakeEngine) Look(ctx context.Context, name string) (*swarm.Stack, error) {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	if e.f.down {
		return nil, fmt.Errorf("%w: connection refused", swarm.ErrUnreachable)
	}
	e.f.looks++
	if st, ok := e.f.stacks[name]; ok {
		return stamped(st), nil
	}
	return &swarm.Stack{Name: name, At: time.Now()}, nil
}

func (e *fakeEngine) Stacks(ctx context.Context) (map[string]*swarm.Stack, error) {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	if e.f.down {
		return nil, fmt.Errorf("%w: connection refused", swarm.ErrUnreachable)
	}
	e.f.looks++
	out := map[string]*swarm.Stack{}
	for name, st := range e.f.stacks {
		out[name] = stamped(st)
	}
	return out, nil
}

func (e *fakeEngine) Changes(ctx context.Context) (<-chan string, <-chan error) {
	return e.changes, e.errs
}

func (e *fakeEngine) Host() string { return e.f.host }
func (e *fakeEngine) Close() error { return nil }

// stamped is a copy of st as a look at it now sees it.
func stamped(st *swarm.Stack) *swarm.Stack {
	cp := *st
	cp.Services = slices.Clone(st.Services)
	for i := range cp.Services {
		s := &cp.Services[i]
		s.Labels, s.PreviousLabels = maps.Clone(s.Labels), maps.Clone(s.PreviousLabels)
	}
	cp.At = time.Now()
	return &cp
}

// captured is what a real Engine said of a stack (swarm's capture file,
// see swarmtest.Captured) as the stack of domain, its app service's
// version label set to version, as if the Engine said it now: every time
// in it moved by as much as its At (a task that failed 130ms before the
// capture failed 130ms ago), and then left as the Engine leaves them.
func captured(t testing.TB, file, domain, version string) *swarm.Stack {
	t.Helper()
	name := strings.ReplaceAll(domain, ".", "_")
	st := swarmtest.Captured(t, file, name)
	app := st.App()
	if app == nil {
		t.Fatalf("capture %s has no app service", file)
	}
	app.Labels["coop-cloud."+name+".version"] = version
	d := time.Since(st.At)
	moved := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.Add(d)
	}
	st.At = st.At.Add(d)
	for i := range st.Services {
		s := &st.Services[i]
		s.UpdatedAt, s.RunningSince, s.LastErrorAt = moved(s.UpdatedAt), moved(s.RunningSince), moved(s.LastErrorAt)
	}
	return st
}

// appStack is a stack abra deployed, healthy: its app service at version,
// Swarm's update of it completed, 1 of 1 running, and a db service
// (capture "completed").
func appStack(t testing.TB, domain, version string) *swarm.Stack {
	t.Helper()
	return captured(t, "completed", domain, version)
}

// lookCount is how many looks the Engine answered so far.
func (f *fakeSwarm) lookCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.looks
}
