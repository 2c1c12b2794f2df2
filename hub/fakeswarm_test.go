package hub

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/swarm"
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
		cp.Services[i].Labels = maps.Clone(st.Services[i].Labels)
	}
	cp.At = time.Now()
	return &cp
}

// appStack is a stack abra deployed: its app service at version, with
// replicas running of desired, and a db service, as the Engine reports
// them (see swarm's captures).
func appStack(domain, version string, running, desired int) *swarm.Stack {
	name := strings.ReplaceAll(domain, ".", "_")
	one := uint64(1)
	d := uint64(desired)
	return &swarm.Stack{Name: name, Services: []swarm.ServiceState{
		{Name: name + "_app", Labels: map[string]string{
			"com.docker.stack.namespace":      name,
			"coop-cloud." + name + ".version": version,
			"coop-cloud." + name + ".recipe":  "custom-html",
			"coop-cloud." + name + ".chaos":   "false",
		}, UpdateState: "completed", UpdateMessage: "update completed", Running: running, Desired: desired, Replicas: &d,
			Update: swarm.UpdateConfig{Parallelism: 1, Monitor: 5 * time.Second, FailureAction: "rollback", Order: "start-first"}},
		{Name: name + "_db", Labels: map[string]string{"com.docker.stack.namespace": name}, Running: 1, Desired: 1, Replicas: &one,
			Update: swarm.UpdateConfig{Parallelism: 1, Monitor: 5 * time.Second, FailureAction: "pause", Order: "stop-first"}},
	}}
}

// lookCount is how many looks the Engine answered so far.
func (f *fakeSwarm) lookCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.looks
}
