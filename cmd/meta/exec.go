package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/opsync"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
)

func newExec(e *env) *cobra.Command {
	var o opsync.Options
	var abraPath string
	var settle time.Duration
	cmd := &cobra.Command{
		Use:   "exec [flags] -- abra app COMMAND DOMAIN [ARGS...]",
		Short: "Run abra with the operator log around it: sync before, record after",
		Long: `exec runs an abra command with your terminal (its input, output and exit code
pass through unchanged) and keeps the operator log in step with it:

  before: the log is pulled (a failure stops commands that change a server;
          for the others it is a warning), another operator's lock on the
          app stops the command, and meta warns when the version your env
          file says differs from the log's;
  after:  deploy, upgrade, rollback, undeploy, move, new --secrets, remove,
          restore, secret generate/insert/remove and volume remove are
          recorded with their outcome, the version abra
          wrote into the env file (the chaos version for --chaos), the env
          it ran with (the log's, when your env file says the same apart
          from the version; else "local env") and the command line with
          secret values redacted, then pushed.

A deploy, upgrade or rollback abra says succeeded is followed on Swarm until
Swarm settles its update, and its outcome is what Swarm did: succeeded only
when Swarm completed the update and runs the version; rolled-back when
Swarm's update monitor rolled it back (the log then keeps the version
before); paused when Swarm paused the update. meta shows what Swarm does
while it waits. Ctrl-C, an Engine that cannot be reached or --settle-timeout
passing leave the deploy recorded as pending: the next meta serve or
meta observe --docker settles it. abra's exit code and output pass through
unchanged either way. Any other outcome is abra's exit code.

The server's Engine is found as abra finds it: its docker_host under
servers: in meta.yaml, else the docker context named after the server
(abra server add makes one), else $DOCKER_HOST, else the local socket.

Commands that change nothing are not recorded, nor is a command that failed
on an app the log has no events of (a typo'd domain): meta says so. An app's
first event goes to the project/env meta.yaml's servers: maps its abra
server to (default: the env named like the server, in the default project),
as with meta append, and meta says where.

With sync: false in your operator config (~/.config/meta/config.yaml) exec
only runs abra, so the alias can live in a shared shell profile:

  alias abra='meta exec -- abra'`,
		Example: `  meta exec -- abra app deploy matrix.example.com
  meta exec --no-operator-sync -- abra app upgrade matrix.example.com 4.1.0+v1.94.0
  meta exec --force -- abra app rollback matrix.example.com`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := e.loadOperatorConfig()
			if err != nil {
				return err
			}
			if abraPath == "" {
				abraPath = cfg.Abra
			}
			exe, err := opsync.FindAbra(abraPath, args[0])
			if err != nil {
				return usageError{err}
			}
			argv := append([]string{exe}, args[1:]...)
			r := &opsync.Runner{
				AbraDir: abra.Dir(e.getenv),
				Options: o,
				Stdin:   e.stdin, Stdout: e.stdout, Stderr: e.stderr,
				Warn: e.warn,
			}
			off := cfg.Sync != nil && !*cfg.Sync
			if off || o.NoLog && o.NoSync {
				// A plain pass-through: no log needed.
				res, err := r.Pass(argv)
				if err != nil {
					return err
				}
				return exitWith(res.Code)
			}
			if err := e.logRunner(cmd, cfg, r, settle); err != nil {
				return err
			}
			res, err := r.Run(cmd.Context(), argv)
			if res == nil {
				return err
			}
			e.newApps(res.NewApps)
			if err != nil {
				// abra ran: its exit code stands, and meta says loudly
				// what it could not record.
				fmt.Fprintf(e.stderr, "meta: error: %s\n", message(err.Error()))
			}
			return exitWith(res.Code)
		},
	}
	cmd.Flags().SetInterspersed(false)
	fl := cmd.Flags()
	fl.StringVar(&abraPath, "abra", "", "the abra executable to run (default: abra: from the operator config, else abra on PATH)")
	fl.BoolVar(&o.NoSync, "no-operator-sync", false, "neither pull before nor push after; what is recorded stays in this clone until meta sync")
	fl.BoolVar(&o.NoLog, "no-operator-log", false, "record nothing")
	fl.DurationVar(&settle, "settle-timeout", 0, "how long to wait for Swarm to settle a deploy's update (default: from the stack's update_config, at most 15m; settle_timeout: in the operator config; below 0: do not wait, record it pending)")
	fl.BoolVar(&o.Force, "force", false, "go ahead despite another operator's lock on the app (the log records that you did)")
	return cmd
}

// logRunner gives r, made with the abra directory, options and terminal,
// what running abra around the log takes, as meta exec and meta rollout
// both run it: the log and who you are, the env files' opener, following
// Swarm (settle, else settle_timeout: in the operator config; the
// --settle-timeout flag when cmd has one and it was given) with progress
// on a terminal, and the hub's nudge after each record.
func (e *env) logRunner(cmd *cobra.Command, cfg operatorConfig, r *opsync.Runner, settle time.Duration) error {
	if e.offline {
		r.Options.NoSync = true
	}
	var err error
	if r.Store, r.Actor, err = e.openAs(); err != nil {
		return fmt.Errorf("%w; to run abra without the log, pass --no-operator-sync --no-operator-log or set sync: false in %s", err, cfg.path)
	}
	r.Options.ForceSync = e.forceSync
	r.OpenEnv = func(ctx context.Context, domain string) (dotenv.File, string, error) {
		ev, err := e.envsFor(r.Store, &sealFlags{})
		if err != nil {
			return dotenv.File{}, "", err
		}
		f, digest, _, err := ev.Open(ctx, domain)
		return f, digest, err
	}
	r.Follow = &opsync.Follow{Timeout: settle, Getenv: e.getenv}
	if f := cmd.Flags().Lookup("settle-timeout"); (f == nil || !f.Changed) && cfg.SettleTimeout != "" {
		if r.Follow.Timeout, err = time.ParseDuration(cfg.SettleTimeout); err != nil {
			return usageError{fmt.Errorf("operator config %s: settle_timeout %q is not a duration like 5m", cfg.path, cfg.SettleTimeout)}
		}
	}
	if isTerminal(e.stderr) {
		r.Follow.Progress = func(line string) { fmt.Fprintf(e.stderr, "meta: %s\n", printable(line)) }
	}
	r.Recorded = func(ev *metav1.Event) {
		if err := e.nudgeHub(cmd.Context()); err != nil {
			e.warn("recorded, but the hub was not told (it finds the event at its next poll): %v", err)
		}
	}
	return nil
}

// exitWith ends meta with code, reporting nothing more.
func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return silentError{code: code}
}
