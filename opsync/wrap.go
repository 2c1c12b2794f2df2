// Package opsync is the operator sync Co-op Cloud asked for (Resolution
// 013): it runs abra with the operator log around it. Before a command it
// brings the log up to date and warns when the app is not where the
// operator thinks; after a command that changes a server it records the
// outcome through the log's one commit path and shares it.
package opsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

// ErrSyncBefore: the log could not be brought up to date before a command
// that changes a server, so abra did not run.
var ErrSyncBefore = errors.New("operator log not up to date")

// Options are `meta exec`'s flags.
type Options struct {
	// NoSync: no pull before and no push after; what is recorded stays in
	// this clone until `meta sync`.
	NoSync bool
	// NoLog: record nothing.
	NoLog bool
	// ForceSync: pull before read-only commands too, whatever the cooldown.
	ForceSync bool
	// Force: go ahead despite another operator's lease; recorded.
	Force bool
}

// Runner runs abra commands around the log.
type Runner struct {
	Store   *store.Store
	Actor   *metav1.Actor
	AbraDir string
	Options Options
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	// Warn tells the operator something that does not stop the command.
	Warn func(format string, args ...any)
	// Recorded is told about every event recorded, e.g. to announce it.
	Recorded func(*metav1.Event)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OpenEnv decrypts the log's sealed env of an app and returns it with
	// its digest, to tell whether a deploy ran with it (see envcheck.go);
	// nil when there is no way to, and deploys are recorded as run with a
	// local env.
	OpenEnv func(ctx context.Context, domain string) (dotenv.File, string, error)
	// Follow says how to follow what Swarm does with a deploy (see
	// follow.go); nil takes abra's exit code as the outcome.
	Follow *Follow
}

// Result is what Run did.
type Result struct {
	// Code is abra's exit code, to be meta's.
	Code int
	// Recorded are the events recorded for the command.
	Recorded []*metav1.Event
	// NewApps are the apps whose logs those events started, and where.
	NewApps []store.Placement
}

// Pass runs argv with nothing around it: operator sync is off.
func (r *Runner) Pass(argv []string) (*Result, error) {
	code, _, err := r.abra(argv)
	if err != nil {
		return nil, err
	}
	return &Result{Code: code}, nil
}

// Run runs argv (abra and its arguments). An error with a nil Result means
// abra did not run; an error with a Result means abra ran (Result.Code is
// its exit code) but recording what it did failed.
func (r *Runner) Run(ctx context.Context, argv []string) (*Result, error) {
	cmd, err := abra.ParseCommand(argv)
	if err != nil {
		// Not an app command: nothing to check or record.
		return r.Pass(argv)
	}
	// The env files as they are before abra runs, read now: a remove
	// deletes the app's, and what it said is what the event records.
	var before []envFile
	if cmd.Domain != "" || cmd.Action == abra.New {
		if before, err = readEnvFiles(r.AbraDir, cmd.Domain); err != nil {
			return nil, err
		}
	}
	if err := r.prepare(ctx, cmd, before); err != nil {
		return nil, err
	}
	code, signaled, err := r.abra(argv)
	if err != nil {
		return nil, err
	}
	res := &Result{Code: code}
	if !cmd.StateChanging() || r.Options.NoLog {
		return res, nil
	}
	events, err := r.events(cmd, argv, before, code, signaled)
	if err != nil {
		return res, fmt.Errorf("abra exited %d but meta could not tell what it did: %w", code, err)
	}
	r.follow(ctx, cmd, events)
	// Ctrl-C reached abra and meta alike: what abra did is recorded all
	// the same.
	ctx = context.WithoutCancel(ctx)
	r.markEnv(ctx, cmd.Domain, before, events)
	var unknown []string
	out, err := r.Store.Write(ctx, r.Actor, r.now(), store.AppendOptions{Offline: r.Options.NoSync, Force: r.Options.Force}, func(tx *store.Tx) (err error) {
		unknown, err = place(tx, events)
		return err
	})
	for _, app := range unknown {
		r.Warn("abra exited %d, and the log has no events of %s: nothing recorded", code, app)
	}
	if errors.Is(err, store.ErrNoChange) && len(unknown) > 0 {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("abra exited %d but the event was not recorded: %w; record it with `meta append`", code, err)
	}
	res.Recorded, res.NewApps = out.Events, out.NewApps
	for _, w := range out.Warnings {
		r.Warn("%s", w)
	}
	if r.Recorded != nil {
		for _, ev := range out.Events {
			r.Recorded(ev)
		}
	}
	return res, nil
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// prepare is the "before": sync (fatal for a command that changes a
// server), the lease, and the version the operator's env file claims.
func (r *Runner) prepare(ctx context.Context, cmd abra.Command, before []envFile) error {
	changing := cmd.StateChanging()
	if !r.Options.NoSync {
		if changing {
			if err := r.Store.Pull(ctx); err != nil {
				return fmt.Errorf("%w before abra app %s: %w; pass --no-operator-sync to run it anyway and record it in this clone only", ErrSyncBefore, cmd.Action, err)
			}
		} else if warning, err := r.Store.Refresh(ctx, r.Options.ForceSync); err != nil {
			r.Warn("operator log not synced: %v", err)
		} else if warning != "" {
			r.Warn("%s", warning)
		}
	}
	if cmd.Domain == "" {
		return nil
	}
	h, err := r.Store.Head(cmd.Domain)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		if changing {
			return err
		}
		r.Warn("%v", err)
		return nil
	}
	if changing && !r.Options.NoLog {
		if held := store.LeaseOf(h, cmd.Domain, r.Actor, r.now()); held != nil && !r.Options.Force {
			return held
		}
	}
	if len(before) == 1 {
		r.checkVersion(cmd, h, before[0].data, before[0].Path)
	}
	if h.Forked {
		r.Warn("the log of %s is forked (operators appended without seeing each other); see `meta head %s`", cmd.Domain, cmd.Domain)
	}
	return nil
}

// checkVersion warns when the version the env file says is deployed is not
// the one the log says: another operator moved the app on, or the env file
// is behind.
func (r *Runner) checkVersion(cmd abra.Command, h *fold.Head, env []byte, path string) {
	_, version, ok := abra.Recipe(env)
	logged := h.Running()
	if !ok || version == "" || logged == "" || version == logged {
		return
	}
	who := ""
	if h.Deployed != nil {
		who = fmt.Sprintf(" (%s by %s, %s)", h.Deployed.Kind, h.Deployed.Operator, h.Deployed.Time.Local().Format("2006-01-02 15:04"))
	}
	r.Warn("the log says %s runs %s%s, but %s says %s; another operator may have moved it on: check `meta head %s` before you %s", cmd.Domain, logged, who, path, version, cmd.Domain, cmd.Action)
}

// abra runs the command with the operator's terminal and returns its exit
// code; signaled says a signal ended it.
func (r *Runner) abra(argv []string) (code int, signaled bool, err error) {
	if len(argv) == 0 {
		return 0, false, errors.New("no command to run")
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = r.Stdin, r.Stdout, r.Stderr
	err = c.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, false, nil
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), true, nil
		}
		return exit.ExitCode(), false, nil
	}
	return 0, false, fmt.Errorf("run %s: %w", argv[0], err)
}

// FindAbra is the abra to run: path when given, else argv0 as found on
// PATH.
func FindAbra(path, argv0 string) (string, error) {
	if path != "" {
		argv0 = path
	}
	if strings.ContainsRune(argv0, filepath.Separator) {
		if _, err := os.Stat(argv0); err != nil {
			return "", fmt.Errorf("abra: %w", err)
		}
		return argv0, nil
	}
	p, err := exec.LookPath(argv0)
	if err != nil {
		return "", fmt.Errorf("%s is not on PATH; install abra or pass --abra PATH", argv0)
	}
	return p, nil
}
