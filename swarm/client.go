package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/connhelper"
	"github.com/moby/moby/api/types/events"
	mswarm "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// DefaultHost is where the Docker Engine listens when DOCKER_HOST is unset.
const DefaultHost = "unix:///var/run/docker.sock"

// ErrNotManager: the Engine answers but is not a Swarm manager, so it
// cannot list services (not in a swarm, or a worker node).
var ErrNotManager = errors.New("docker engine is not a swarm manager")

// callTimeout bounds every request but the event stream: a dead ssh
// connection or a stuck Engine must not hang a look forever.
const callTimeout = 30 * time.Second

// pingEvery is how often Changes makes sure the Engine still answers
// while its stream is quiet: a stream over a dead ssh connection may
// otherwise wait for ever. pingTimeout is how long that ping may take (a
// ping over ssh takes milliseconds): together they bound how long a
// connection gone silent goes unnoticed to 30 s (callTimeout, as first
// written, made it a minute: measured by TestChangesOverSSH).
const (
	pingEvery   = 20 * time.Second
	pingTimeout = 10 * time.Second
)

// sshKeepalive are the ssh options meta reaches an ssh:// Engine with.
var sshKeepalive = []string{"-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=2"}

// Dial connects to the Docker Engine at h, as the docker CLI and abra do:
// unix:// and tcp:// directly (TLS with h.CertPath), ssh:// through the
// docker CLI's connection helper, which runs `ssh ... docker system
// dial-stdio` (so ~/.ssh/config, agents and keys work as for abra). The
// API version is negotiated (the client speaks 1.40 and newer; Debian's
// engine is 1.41). It pings the Engine and checks it is a Swarm manager:
// errors wrap ErrUnreachable (naming the host) or ErrNotManager.
func Dial(ctx context.Context, h Host) (Engine, error) {
	host := h.DockerHost
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("DOCKER_HOST %q: want unix:///path, tcp://host:port or ssh://[user@]host[:port]", host)
	}
	var opts []client.Opt
	switch u.Scheme {
	case "unix":
		opts = append(opts, client.WithHost(host))
	case "tcp":
		opts = append(opts, client.WithHost(host))
		if h.CertPath != "" {
			opts = append(opts, client.WithTLSClientConfig(filepath.Join(h.CertPath, "ca.pem"),
				filepath.Join(h.CertPath, "cert.pem"), filepath.Join(h.CertPath, "key.pem")))
		}
	case "ssh":
		// Keepalives, so that a connection gone silent (a NAT that forgot
		// it) ends within about 30 s instead of holding the event stream
		// open on nothing.
		helper, err := connhelper.GetConnectionHelperWithSSHOpts(host, sshKeepalive)
		if err != nil {
			return nil, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
		}
		opts = append(opts, client.WithHost(helper.Host), client.WithDialContext(helper.Dialer))
	default:
		return nil, fmt.Errorf("DOCKER_HOST %q: meta speaks to unix://, tcp:// and ssh:// engines, not %s://", host, u.Scheme)
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	e := &engine{c: c, host: host}
	if err := e.check(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return e, nil
}

// engine is an Engine through moby/moby/client.
type engine struct {
	c    *client.Client
	host string
}

func (e *engine) Host() string { return e.host }
func (e *engine) Close() error { return e.c.Close() }

// check pings the Engine (negotiating the API version) and asks whether
// it manages a swarm.
func (e *engine) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := e.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return e.fail("ask", err)
	}
	info, err := e.c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return e.fail("ask", err)
	}
	sw := info.Info.Swarm
	if sw.LocalNodeState != mswarm.LocalNodeStateActive || !sw.ControlAvailable {
		why := "its node is not in a swarm (run docker swarm init)"
		if sw.LocalNodeState == mswarm.LocalNodeStateActive {
			why = "its node is a swarm worker; point DOCKER_HOST at a manager"
		}
		return fmt.Errorf("%w: %s: %s", ErrNotManager, e.host, why)
	}
	return nil
}

// fail wraps an error of a request: ErrUnreachable when the Engine was
// not reached or stopped answering, the Engine's own answer otherwise.
func (e *engine) fail(doing string, err error) error {
	if unreachable(err) {
		return fmt.Errorf("%w: %s the Docker Engine at %s: %v", ErrUnreachable, doing, e.host, err)
	}
	return fmt.Errorf("%s the Docker Engine at %s: %w", doing, e.host, err)
}

// unreachable says err is the transport's, not an answer of the Engine.
func unreachable(err error) bool {
	var uerr *url.Error
	var nerr net.Error
	return client.IsErrConnectionFailed(err) || errors.As(err, &uerr) || errors.As(err, &nerr) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Look reads one stack in one service list and one task list.
func (e *engine) Look(ctx context.Context, stack string) (*Stack, error) {
	if stack == "" {
		return nil, errors.New("look: no stack name")
	}
	stacks, err := e.look(ctx, make(client.Filters).Add("label", NamespaceLabel+"="+stack))
	if err != nil {
		return nil, err
	}
	if st := stacks[stack]; st != nil {
		return st, nil
	}
	return &Stack{Name: stack, At: time.Now()}, nil
}

// Stacks reads every stack, in one service list and one task list.
func (e *engine) Stacks(ctx context.Context) (map[string]*Stack, error) {
	return e.look(ctx, make(client.Filters).Add("label", NamespaceLabel))
}

func (e *engine) look(ctx context.Context, services client.Filters) (map[string]*Stack, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	for try := 1; ; try++ {
		at := time.Now()
		svcs, tasks, err := e.list(ctx, services)
		// A service removed between the two requests makes the task list
		// fail: look again.
		if cerrdefs.IsNotFound(err) && try < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return StacksFrom(svcs, tasks, at), nil
	}
}

// list is the two requests of a look: the services the filter picks, with
// their status, and the tasks of those services.
func (e *engine) list(ctx context.Context, services client.Filters) ([]mswarm.Service, []mswarm.Task, error) {
	sl, err := e.c.ServiceList(ctx, client.ServiceListOptions{Filters: services, Status: true})
	if err != nil {
		return nil, nil, e.fail("list the services of", err)
	}
	if len(sl.Items) == 0 {
		return nil, nil, nil
	}
	ids := make([]string, len(sl.Items))
	for i, s := range sl.Items {
		ids[i] = s.ID
	}
	tl, err := e.c.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", ids...)})
	if err != nil {
		return nil, nil, e.fail("list the tasks of", err)
	}
	return sl.Items, tl.Items, nil
}

// Changes follows the Engine's event stream for services (created,
// updated, removed: Swarm's own update steps included) and containers
// (a task's container dying on this node), and sends the stack each
// concerns. It does not reconnect: when the stream breaks, or the Engine
// does not answer within 10 s the ping it gets every 20 s, the error
// channel gets an error wrapping ErrUnreachable and both channels close;
// the caller reconnects, with backoff, and looks again at what it may
// have missed.
// When ctx ends, the channels close with no error.
func (e *engine) Changes(ctx context.Context) (<-chan string, <-chan error) {
	names := make(chan string, 16)
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	filters := make(client.Filters).Add("type", string(events.ServiceEventType), string(events.ContainerEventType))
	res := e.c.Events(ctx, client.EventsListOptions{Filters: filters})
	go func() {
		defer close(errc)
		defer close(names)
		defer cancel()
		ping := time.NewTicker(pingEvery)
		defer ping.Stop()
		stackOf := map[string]string{} // service name -> stack, for removed services
		for {
			select {
			case <-ctx.Done():
				return
			case <-ping.C:
				pctx, pcancel := context.WithTimeout(ctx, pingTimeout)
				_, err := e.c.Ping(pctx, client.PingOptions{})
				pcancel()
				if err != nil && ctx.Err() == nil {
					errc <- e.fail("ping", err)
					return
				}
			case err := <-res.Err:
				if ctx.Err() == nil {
					if err == nil {
						err = io.EOF
					}
					errc <- fmt.Errorf("%w: the event stream of the Docker Engine at %s broke: %v", ErrUnreachable, e.host, err)
				}
				return
			case m, ok := <-res.Messages:
				if !ok {
					continue // res.Err says why
				}
				name := e.stackOfEvent(ctx, m, stackOf)
				if name == "" {
					continue
				}
				select {
				case names <- name:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return names, errc
}

// stackOfEvent names the stack an event concerns, "" when none. Container
// events carry the container's labels, the namespace among them. Service
// events carry only the service's name: its stack is asked of the Engine
// (and remembered, so a removed service still names its stack).
func (e *engine) stackOfEvent(ctx context.Context, m events.Message, stackOf map[string]string) string {
	attrs := m.Actor.Attributes
	if m.Type == events.ContainerEventType {
		if strings.HasPrefix(string(m.Action), "exec_") {
			return "" // a health check ran: nothing changed
		}
		return attrs[NamespaceLabel]
	}
	if m.Type != events.ServiceEventType {
		return ""
	}
	name := attrs["name"]
	if ns, ok := stackOf[name]; ok {
		return ns
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	id := m.Actor.ID
	if id == "" {
		id = name
	}
	if svc, err := e.c.ServiceInspect(ctx, id, client.ServiceInspectOptions{}); err == nil {
		ns := svc.Service.Spec.Labels[NamespaceLabel]
		if name != "" {
			stackOf[name] = ns
		}
		return ns
	}
	// Removed before it could be asked, and never seen: a stack's
	// services are named <stack>_<service>, and compose service names
	// rarely hold an underscore.
	if i := strings.LastIndexByte(name, '_'); i > 0 {
		return name[:i]
	}
	return ""
}
