package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	"git.coopcloud.tech/coop-cloud/meta/opsync"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/rollout"
)

func newRollout(e *env) *cobra.Command {
	var cfg rollout.Config
	var resume, asJSON bool
	var abraPath string
	var settle time.Duration
	cmd := &cobra.Command{
		Use:   "rollout RECIPE/CHANNEL [flags] | --resume [--skip DOMAIN]",
		Short: "Bring every app following a channel to its release, wave by wave, through meta exec",
		Long: `rollout runs the plan of a channel (meta plan RECIPE/CHANNEL) through meta
exec: wave by wave (env order, then server; --wave-size splits them), each
app's abra upgrade or rollback in turn, each followed on Swarm until it
settles. Before each wave the log is pulled and the wave planned again, so
what other operators did meanwhile counts; a promotion of the channel
meanwhile stops the rollout (exit 4: start a new one).

It stops at the first app whose deploy failed, was rolled back or paused by
Swarm, is still pending, or drifted: the log must say the app is deployed
at the channel's release without drift. The apps after it are not touched.
Blocked apps (locked, drifted, failed before, ...) are skipped and listed;
they do not stop it.

The whole rollout is one batch ("rollout RECIPE/CHANNEL to VERSION"), or
the batch open in this clone. A stopped rollout keeps its batch open and
its state in the clone: fix what went wrong, then

  meta rollout --resume                 retries the app it stopped at
  meta rollout --resume --skip DOMAIN   leaves that app out

Progress goes to stderr, and abra's output with it; the summary (every
app's result, the counts, the batch, how to resume) to stdout, or as JSON
with --json. Exit codes: 0 done; 1 stopped (or nothing to resume); 4 the
channel moved since the rollout began; 2 usage.`,
		Example: `  meta rollout nextcloud/stable --dry-run
  meta rollout nextcloud/stable --env-order staging,prod --wave-size 5 --pause 10m
  meta rollout --resume --skip cloud.example.org`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case resume && cfg.DryRun:
				return usageError{errors.New("--resume and --dry-run: a stopped rollout resumes for real")}
			case !resume && len(cfg.Skip) > 0:
				return usageError{errors.New("--skip goes with --resume")}
			case !resume && len(args) != 1:
				return usageError{errors.New("missing RECIPE/CHANNEL")}
			case len(args) > 1:
				return usageError{fmt.Errorf("unexpected argument %q", args[1])}
			case cfg.WaveSize < 0 || cfg.Pause < 0:
				return usageError{errors.New("--wave-size and --pause cannot be below 0")}
			}
			if len(args) == 1 {
				ref, err := projects.ParseChannelRef(args[0])
				if err != nil {
					return usageError{err}
				}
				cfg.Channel = ref
			}
			oc, err := e.loadOperatorConfig()
			if err != nil {
				return err
			}
			if abraPath == "" {
				abraPath = oc.Abra
			}
			if cfg.Abra, err = opsync.FindAbra(abraPath, "abra"); err != nil {
				return usageError{err}
			}
			// abra's output is progress here: stdout carries the summary.
			r := &opsync.Runner{AbraDir: abra.Dir(e.getenv), Stdout: e.stderr, Stderr: e.stderr, Warn: e.warn}
			if err := e.logRunner(cmd, oc, r, settle); err != nil {
				return err
			}
			cfg.Store, cfg.Runner = r.Store, r
			cfg.Progress = func(line string) { fmt.Fprintf(e.stderr, "meta: %s\n", printable(line)) }
			var sum *rollout.Summary
			if resume {
				sum, err = rollout.Resume(cmd.Context(), cfg)
			} else {
				sum, err = rollout.Run(cmd.Context(), cfg)
			}
			if errors.Is(err, rollout.ErrOtherChannel) {
				return usageError{err}
			}
			if sum == nil {
				return err
			}
			if asJSON {
				if werr := writeJSON(e.stdout, sum); werr != nil {
					return werr
				}
			} else {
				printRollout(e, sum)
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "meta: error: %s\n", message(err.Error()))
				return silentError{code: exitCode(err)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&cfg.WaveSize, "wave-size", 0, "at most this many apps a wave (default: a wave is every app of one env on one server)")
	fl.DurationVar(&cfg.Pause, "pause", 0, "wait this long between waves (a resume keeps the stopped rollout's unless given)")
	fl.BoolVar(&cfg.DryRun, "dry-run", false, "print the waves and the abra commands; run and write nothing")
	fl.StringSliceVar(&cfg.EnvOrder, "env-order", nil, "envs in the order their waves go, comma-separated (the others after, by name)")
	fl.BoolVar(&resume, "resume", false, "go on with the rollout stopped in this clone, retrying the app it stopped at")
	fl.StringArrayVar(&cfg.Skip, "skip", nil, "with --resume: leave this app (DOMAIN or P/E/DOMAIN) out; repeatable")
	fl.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	fl.StringVar(&abraPath, "abra", "", "the abra executable to run (default: abra: from the operator config, else abra on PATH)")
	fl.DurationVar(&settle, "settle-timeout", 0, "how long to wait for Swarm to settle each update (as meta exec's)")
	return cmd
}

// printRollout prints a rollout's summary as text.
func printRollout(e *env, sum *rollout.Summary) {
	w := e.stdout
	what := "rollout"
	if sum.DryRun {
		what = "dry run of the rollout"
	}
	fmt.Fprintf(w, "%s of %s to %s", what, sum.Channel, sum.Version)
	switch {
	case sum.Done:
		fmt.Fprint(w, ": done")
	case sum.Stopped != nil:
		fmt.Fprintf(w, ": stopped: %s", printable(sum.Stopped.Reason))
	}
	fmt.Fprintln(w)
	if sum.BatchID != "" {
		fmt.Fprintf(w, "batch %s\n", sum.BatchID)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tAPP\tRESULT\tFROM\tDETAIL")
	for _, a := range sum.Apps {
		wave := "-"
		if a.Wave > 0 {
			wave = fmt.Sprint(a.Wave)
		}
		detail := a.Reason
		switch {
		case len(a.Blocked) > 0:
			detail = strings.Join(a.Blocked, "; ")
		case sum.DryRun && len(a.Command) > 0:
			detail = strings.Join(a.Command, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", wave, printable(a.App), a.Result, orDash(a.From), printable(detail))
	}
	tw.Flush()
	c := sum.Counts
	var parts []string
	for _, n := range []struct {
		n    int
		what string
	}{{c.Planned, "to change"}, {c.Upgraded, "upgraded"}, {c.Downgraded, "downgraded"}, {c.UpToDate, "up to date"}, {c.Blocked, "blocked"}, {c.Stopped, "stopped"}, {c.NotReached, "not reached"}, {c.Skipped, "skipped"}} {
		if n.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n.n, n.what))
		}
	}
	fmt.Fprintf(w, "%s; %d waves\n", strings.Join(parts, ", "), len(sum.Waves))
	if s := sum.Stopped; s != nil {
		fmt.Fprintf(w, "resume: %s\n", s.Resume)
		if s.Skip != "" {
			fmt.Fprintf(w, "    or: %s\n", s.Skip)
		}
	}
}
