package swarm

// This file is the contract of the Engine half of the package: client.go
// reaches an Engine (moby/moby/client), look.go turns its answers into
// stacks, settle.go judges and follows an update.

import (
	"context"
	"errors"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// ErrUnreachable: the Docker Engine could not be reached or stopped
// answering (a connection refused, an ssh failure, a stream cut).
var ErrUnreachable = errors.New("docker engine unreachable")

// ErrNotSettled: Follow stopped (its context ended or its timeout passed)
// before Swarm settled the update.
var ErrNotSettled = errors.New("swarm has not settled the update")

// Host says how to reach one Docker Engine, as the docker CLI and abra do.
type Host struct {
	// DockerHost is in DOCKER_HOST's syntax: unix:///path, tcp://host:port
	// or ssh://[user@]host[:port]. Empty: unix:///var/run/docker.sock.
	DockerHost string
	// CertPath is a directory holding ca.pem, cert.pem and key.pem, as
	// DOCKER_CERT_PATH: with it, tcp:// speaks TLS and verifies the Engine.
	CertPath string
}

// Stack is what one look at the Engine saw of one stack: every service
// labelled com.docker.stack.namespace=<stack>.
type Stack struct {
	// Name is the stack's name, e.g. "matrix_example_com".
	Name string
	// Services, sorted by name; none when the stack is not there.
	Services []ServiceState
	// At is when the Engine was asked.
	At time.Time
}

// ServiceState is one service of a stack at one look.
type ServiceState struct {
	Name           string
	Labels         map[string]string
	PreviousLabels map[string]string // PreviousSpec's labels; nil without one
	// UpdateState and UpdateMessage are UpdateStatus's; empty without one.
	UpdateState, UpdateMessage string
	// UpdateStale says the UpdateStatus is an earlier update's: the
	// service was written after that update completed. The real Engine
	// resets UpdateStatus on every spec change (a label-only change then
	// leaves none), so this is a guard, false on the engines seen so far.
	UpdateStale bool
	// UpdatedAt is when the service was last written: by a spec change,
	// and also by Swarm itself as it moves an update along.
	UpdatedAt time.Time
	// Running counts tasks running (and meant to); Desired the tasks Swarm
	// wants (ServiceStatus.DesiredTasks, else replicas); Starting the tasks
	// meant to run (or to be ready: a restart waiting out its delay) and
	// on their way (new ... starting). During a start-first update Running
	// may exceed Desired.
	Running, Desired, Starting int
	// Outdated counts running tasks made from an earlier spec: their
	// container spec is not the service's now (an update not begun yet).
	Outdated int
	// RunningSince is when the youngest running task started running;
	// zero when none runs.
	RunningSince time.Time
	// LastError is the error of the most recent failed task, LastErrorAt
	// when it failed.
	LastError   string
	LastErrorAt time.Time
	// Update is the service's update_config, with Swarm's defaults filled
	// in; Replicas is nil for a global service.
	Update   UpdateConfig
	Replicas *uint64
}

// UpdateConfig is the part of a service's update_config that says how long
// an update may take.
type UpdateConfig struct {
	Parallelism   uint64
	Delay         time.Duration
	Monitor       time.Duration
	FailureAction string // "pause", "continue" or "rollback"
	Order         string // "stop-first" or "start-first"
}

// Missing says the Engine has no service of the stack.
func (s *Stack) Missing() bool { return len(s.Services) == 0 }

// App is the stack's `app` service, nil when it has none.
func (s *Stack) App() *ServiceState {
	want := ServiceName(s.Name)
	for i := range s.Services {
		if s.Services[i].Name == want {
			return &s.Services[i]
		}
	}
	return nil
}

// Engine is a connection to one Docker Engine, through the official Docker
// Engine client. It is safe for concurrent use.
type Engine interface {
	// Look reads one stack: one service list and one task list.
	Look(ctx context.Context, stack string) (*Stack, error)
	// Stacks reads every stack the Engine runs, by name.
	Stacks(ctx context.Context) (map[string]*Stack, error)
	// Changes streams the names of stacks whose services or tasks changed,
	// as the Engine's event stream says, until ctx ends or the stream
	// breaks (the error then wraps ErrUnreachable).
	Changes(ctx context.Context) (<-chan string, <-chan error)
	// Host is where the Engine is, for messages.
	Host() string
	Close() error
}

// Verdict is what Swarm did with an update, as a deploy's outcome.
type Verdict struct {
	// Outcome is OUTCOME_SUCCEEDED, _ROLLED_BACK, _PAUSED or _FAILED.
	Outcome metav1.Outcome
	// Detail says why in a sentence (Swarm's update message, the version
	// that runs instead, the last task error).
	Detail string
}
