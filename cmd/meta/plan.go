package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
)

// planFlags are the flags that shape a plan: `meta plan`'s, and
// `meta rollout`'s.
type planFlags struct {
	envOrder []string
	waveSize int
}

func (f *planFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.envOrder, "env-order", nil, "envs in the order their waves go, comma-separated (the others after, by name)")
	cmd.Flags().IntVar(&f.waveSize, "wave-size", 0, "at most this many apps of one env and server in a wave (0: all of them)")
}

// options are the plan's options for the channel named by arg ("" for
// every channel), planned by e's operator now.
func (f *planFlags) options(e *env, root, arg string) (plan.Options, error) {
	o := plan.Options{EnvOrder: f.envOrder, WaveSize: f.waveSize, Now: time.Now()}
	if f.waveSize < 0 {
		return o, usageError{fmt.Errorf("--wave-size %d: want 0 (whole groups) or more", f.waveSize)}
	}
	for _, env := range f.envOrder {
		if err := projects.ValidateEnv(env); err != nil {
			return o, usageError{fmt.Errorf("--env-order: %w", err)}
		}
	}
	if arg != "" {
		ref, err := projects.ParseChannelRef(arg)
		if err != nil {
			return o, usageError{err}
		}
		o.Channel = &ref
	}
	if a, err := e.actor(root); err == nil {
		o.Operator = a.GetName() // their own lease blocks nothing
	}
	return o, nil
}

func newPlan(e *env) *cobra.Command {
	var asJSON bool
	var pf planFlags
	cmd := &cobra.Command{
		Use:   "plan [RECIPE/CHANNEL]",
		Short: "Show what it takes to bring every app to its channel's release",
		Long: `plan lists every app that follows a channel (meta follow), or only those of
RECIPE/CHANNEL: the channel's release, the version the log says runs, the
version Swarm was last seen running, and the action:

  up-to-date  the app runs the channel's release, without drift
  upgrade     the channel is ahead: the exact abra command is shown
  rollback    the channel was moved back to an older release
  blocked     the app lags, and something must be dealt with first: the
              channel has no release or is forked, the app's log is
              forked, another operator holds a lock, the last deploy
              failed, was rolled back or paused by Swarm or is pending,
              Swarm drifted from the log, the app is not deployed, runs
              a chaos deploy or another recipe

The apps to change are grouped into waves: by env (--env-order first, the
others by name), then by server, each cut to --wave-size apps. meta rollout
runs the waves. A plan is a function of the log: every clone plans alike.`,
		Example: `  meta plan
  meta plan nextcloud/stable --env-order staging,prod --wave-size 5
  meta plan --json | jq '.apps[] | select(.action == "blocked")'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			}
			o, err := pf.options(e, s.Root(), arg)
			if err != nil {
				return err
			}
			var p *plan.Plan
			if err := e.answer(cmd.Context(), s, func() (err error) { p, err = plan.Of(s, o); return err }); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, p)
			}
			return writePlan(e, p)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON (keys in README.md)")
	pf.add(cmd)
	return cmd
}

// writePlan prints the channels, then one row per app, waves first.
func writePlan(e *env, p *plan.Plan) error {
	pt := e.painter(e.stdout)
	for _, c := range p.Channels {
		line := fmt.Sprintf("%s at %s, %d following", c.Channel, orDash(c.Version), c.Followers)
		if c.Forked {
			line += ", " + pt.paint("31", "forked")
		}
		fmt.Fprintln(e.stdout, printable(line))
	}
	if len(p.Apps) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	t := newTable(e.stdout)
	t.row("WAVE", "DOMAIN", "ENV", "SERVER", "CHANNEL", "LOG", "OBSERVED", "ACTION", "WHAT")
	for _, a := range p.Apps {
		wave, what := "-", strings.Join(a.Command, " ")
		if a.Wave > 0 {
			wave = fmt.Sprint(a.Wave)
		}
		action := a.Action
		switch a.Action {
		case plan.Blocked:
			action, what = pt.paint("31", action), strings.Join(a.Blocked, "; ")
		case plan.Upgrade, plan.Rollback:
			action = pt.paint("33", action)
		}
		t.row(printable(wave), printable(a.Domain), printable(a.Env), printable(a.Server), printable(a.Channel+" "+orDash(a.ChannelVersion)),
			printable(orDash(a.LogVersion)), printable(orDash(a.ObservedVersion)), action, printable(what))
	}
	if err := t.flush(); err != nil {
		return err
	}
	c := p.Counts
	fmt.Fprintf(e.stdout, "\n%d up to date, %d to upgrade, %d to roll back, %d blocked; %d waves\n", c.UpToDate, c.Upgrade, c.Rollback, c.Blocked, len(p.Waves))
	return nil
}
