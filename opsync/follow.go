package opsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

// Follow says how exec follows what Swarm does with the update a deploy,
// upgrade or rollback started, so that the event's outcome is Swarm's
// verdict rather than abra's exit code.
type Follow struct {
	// Timeout bounds the wait: zero derives it from the stack
	// (swarm.Stack.SettleTimeout), below zero exec does not wait and
	// records the deploy as pending.
	Timeout time.Duration
	// Getenv reads DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_CONFIG and HOME,
	// to reach the server's Engine as abra and the docker CLI do.
	Getenv func(string) string
	// Progress is told in a line what Swarm is doing while exec waits; nil
	// says nothing.
	Progress func(line string)
	// Dial reaches an Engine; swarm.Dial when nil.
	Dial func(context.Context, swarm.Host) (swarm.Engine, error)
}

// EngineOf is how to reach the Docker Engine of an abra server, and what
// said so: the server's docker_host in meta.yaml, else the docker context
// abra added for the server, else $DOCKER_HOST, else the local socket.
func EngineOf(cfg config.Config, server string, getenv func(string) string) (swarm.Host, string) {
	if s, ok := cfg.Servers[server]; ok && s.DockerHost != "" {
		return swarm.Host{DockerHost: s.DockerHost, CertPath: config.ExpandHome(s.DockerCertPath, getenv("HOME"))}, fmt.Sprintf("docker_host of server %s in %s", server, config.File)
	}
	if server != "" {
		if c, err := abra.FindDockerContext(server, getenv); err == nil {
			return swarm.Host{DockerHost: c.Host, CertPath: c.CertPath}, "docker context " + server
		}
	}
	if h := getenv("DOCKER_HOST"); h != "" {
		certs := ""
		if getenv("DOCKER_TLS_VERIFY") != "" {
			certs = getenv("DOCKER_CERT_PATH")
			if certs == "" {
				certs = config.ExpandHome("~/.docker", getenv("HOME"))
			}
		}
		return swarm.Host{DockerHost: h, CertPath: certs}, "$DOCKER_HOST"
	}
	return swarm.Host{DockerHost: swarm.DefaultHost}, "the local Docker socket"
}

// follow waits for Swarm to settle each deploy abra said it did, and sets
// the event's outcome and what Swarm did (Event.swarm). When it cannot
// tell (interrupted, the Engine unreachable, the timeout passed) the
// deploy is pending, for `meta serve` or `meta observe` to settle; meta
// says so. ctx is the command's: Ctrl-C ends the wait, not the recording.
func (r *Runner) follow(ctx context.Context, cmd abra.Command, events []recorded) {
	if r.Follow == nil {
		return
	}
	for _, e := range events {
		ev := e.ev
		if !record.IsDeployKind(ev.GetKind()) || ev.GetOutcome() != metav1.Outcome_OUTCOME_SUCCEEDED {
			continue
		}
		stack := ev.GetStack()
		d := fold.RefOf(ev)
		want := d.Running()
		seen, verdict, err := r.followOne(ctx, e.server, stack, want)
		if seen != nil {
			ev.Swarm = seen
		}
		if err != nil {
			ev.Outcome = metav1.Outcome_OUTCOME_PENDING
			r.Warn("%s; the %s of %s is recorded as pending: `meta observe %s --docker` or a running `meta serve` settles it", err, cmd.Action, ev.GetAddress().GetApp(), ev.GetAddress().GetApp())
			continue
		}
		ev.Outcome = verdict.Outcome
		if verdict.Outcome != metav1.Outcome_OUTCOME_SUCCEEDED {
			r.Warn("Swarm did not keep the %s of %s to %s: %s (%s); abra's exit code stands, the log says so", cmd.Action, ev.GetAddress().GetApp(), want, record.OutcomeName(verdict.Outcome), verdict.Detail)
		}
	}
}

// followOne follows one stack's update; the observation is what Swarm was
// last seen doing, nil when the Engine never answered.
func (r *Runner) followOne(ctx context.Context, server, stack, want string) (*metav1.Observation, swarm.Verdict, error) {
	f := r.Follow
	if f.Timeout < 0 {
		return nil, swarm.Verdict{}, errors.New("not waiting for Swarm (--settle-timeout below zero)")
	}
	if ctx.Err() != nil {
		return nil, swarm.Verdict{}, errors.New("interrupted before Swarm was asked")
	}
	if f.Timeout > 0 {
		// The timeout bounds the whole wait, reaching the Engine too (one
		// that accepts and never answers).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.Timeout)
		defer cancel()
	}
	getenv := f.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	host, from := EngineOf(r.Store.Config(), server, getenv)
	dial := f.Dial
	if dial == nil {
		dial = swarm.Dial
	}
	e, err := dial(ctx, host)
	if err != nil {
		return nil, swarm.Verdict{}, fmt.Errorf("could not ask Swarm what it did (the Engine from %s): %w", from, err)
	}
	defer e.Close()
	timeout := f.Timeout
	if timeout == 0 {
		first, err := e.Look(ctx, stack)
		if err != nil {
			return nil, swarm.Verdict{}, fmt.Errorf("could not ask Swarm what it did: %w", err)
		}
		timeout = first.SettleTimeout()
	}
	progress := func(st *swarm.Stack) {
		if f.Progress != nil {
			f.Progress(fmt.Sprintf("swarm: %s: %s", stack, st.Summary()))
		}
	}
	last, verdict, err := swarm.Follow(ctx, e, stack, want, timeout, progress)
	var seen *metav1.Observation
	if last != nil {
		seen = last.Observation("exec")
		seen.Server = server
	}
	if err != nil {
		return seen, swarm.Verdict{}, fmt.Errorf("Swarm had not settled the update: %w", err)
	}
	return seen, verdict, nil
}

// ObserveOnce looks once at the app's stack on its server's Engine (found
// as EngineOf finds it, the server being the one of the app's abra env
// file) and records what runs, settling the app's pending deploy when
// Swarm has settled its update. A stack the Engine does not have is
// recorded as missing for an app the log knows; for any other app, and
// for a stack whose app service has no coop-cloud labels, it is an error
// (swarm.ErrNoService, swarm.ErrNoLabels) and nothing is written. It
// returns nil when the observation said what the log already had.
func ObserveOnce(ctx context.Context, s *store.Store, actor *metav1.Actor, abraDir, domain, stack string, getenv func(string) string, opts store.AppendOptions) (*store.Appended, error) {
	server := abra.ServerOf(abraDir, domain)
	host, _ := EngineOf(s.Config(), server, getenv)
	e, err := swarm.Dial(ctx, host)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	st, err := e.Look(ctx, stack)
	if err != nil {
		return nil, err
	}
	if err := st.CheckApp(e.Host()); err != nil {
		_, known := s.Head(domain)
		if !st.Missing() || known != nil {
			return nil, err
		}
	}
	o := st.Observation("docker")
	o.Server = server
	out, err := s.ObserveSettling(ctx, domain, o, func(want string) (metav1.Outcome, bool) {
		v, ok := st.Settled(want, swarm.FollowGrace)
		return v.Outcome, ok
	}, actor, time.Now(), opts)
	return out, err
}
