package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newHead(e *env) *cobra.Command {
	var asJSON bool
	var format string
	cmd := &cobra.Command{
		Use:   "head DOMAIN",
		Short: "Show what the log says is deployed for an app, by whom, since when",
		Long: `head folds the app's log into its state: the version deployed, by whom and
since when, what Swarm was last seen running and any drift, the lock on it.

--format env prints OPERATOR_SYNC_VERSION=<version> (Resolution 013), for
scripts and env files; --json prints the head as JSON (keys in README.md).`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			var h *fold.Head
			if err := e.answer(cmd.Context(), s, func() (err error) { h, err = s.Head(args[0]); return err }); err != nil {
				return err
			}
			now := time.Now()
			switch format {
			case "text":
			case "json":
				asJSON = true
			case "env":
				v, err := syncVersion(h)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s=%s\n", abra.StampKey, printable(v))
				return nil
			default:
				return usageError{fmt.Errorf("--format %q: want text, json or env", format)}
			}
			unpushed, err := s.Unpushed(cmd.Context(), h.Domain)
			if err != nil {
				return err
			}
			channel, err := channelStatus(e, s, h, now)
			if err != nil {
				return err
			}
			if asJSON {
				r, err := s.Report(cmd.Context(), h)
				if err != nil {
					return err
				}
				return writeJSON(e.stdout, headView{HeadReport: r, Unpushed: len(unpushed), Channel: channel})
			}
			if len(s.Signers()) > 0 || s.Config().SignaturesRequired() {
				// A log whose operators sign says who signed the deploy.
				if h, err = s.SignHead(cmd.Context(), h); err != nil {
					return err
				}
			}
			return writeHead(e.stdout, h, channel, len(unpushed), e.painter(e.stdout), now)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the head as JSON (keys in README.md)")
	cmd.Flags().StringVar(&format, "format", "text", "text, json, or env (OPERATOR_SYNC_VERSION=<version>)")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "json", "env"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// headView is `meta head --json`: the folded head, plus what only this
// clone knows.
type headView struct {
	store.HeadReport
	// Unpushed counts this app's events not on the remote yet.
	Unpushed int `json:"unpushed"`
	// Channel is how the app stands against the channel it follows; null
	// when it follows none.
	Channel *plan.Status `json:"channel"`
}

// channelStatus is how h stands against the channel it follows (nil for
// none), planned by e's operator at now.
func channelStatus(e *env, s *store.Store, h *fold.Head, now time.Time) (*plan.Status, error) {
	if h.Follows == nil {
		return nil, nil
	}
	statusOf, err := channelStatusAmong(e, s, h.Follows.Recipe, now)
	if err != nil {
		return nil, err
	}
	return statusOf(h), nil
}

// channelStatusAmong says how each head stands against its channel, one
// of recipe's (every recipe's for "").
func channelStatusAmong(e *env, s *store.Store, recipe string, now time.Time) (func(*fold.Head) *plan.Status, error) {
	in, err := plan.ChannelsFrom(s, recipe)
	if err != nil {
		return nil, err
	}
	o := plan.Options{Now: now}
	if a, err := e.actor(s.Root()); err == nil {
		o.Operator = a.GetName()
	}
	return func(h *fold.Head) *plan.Status { return plan.StatusOf(h, in, o) }, nil
}

// statusText says in a few words how an app stands against its channel.
func statusText(st *plan.Status, p painter) string {
	at := st.Channel + " at " + orDash(st.Version)
	switch {
	case !st.Lags:
		return at + ", up to date"
	case st.Action == plan.Blocked:
		return at + ", " + p.paint("31", "lags, blocked") + ": " + strings.Join(st.Blocked, "; ")
	}
	return at + ", " + p.paint("33", "lags") + ": " + st.Action + " (meta plan " + st.Channel + ")"
}

func writeHead(w io.Writer, h *fold.Head, channel *plan.Status, unpushed int, p painter, now time.Time) error {
	h = printableCopy(h)
	t := newTable(w)
	row := func(k, v string) { t.row(k+":", v) }
	row("app", h.Domain+" ("+h.Project+"/"+h.Env+")")
	row("state", p.state(h.State))
	version := orDash(h.Version)
	if h.ChaosVersion != "" {
		version += " (chaos " + h.ChaosVersion + ")"
	}
	row("version", version)
	row("recipe", orDash(h.Recipe))
	if !h.Since.IsZero() {
		row("since", when(h.Since)+" ("+ago(h.Since, now)+") by "+h.DeployedBy)
	}
	if d := h.Deployed; d != nil && d.Signature != "" {
		row("signed", signatureText(d.Signature, d.SignedBy))
	}
	if f := h.LastFailure; f != nil {
		line := fmt.Sprintf("%s %s by %s at %s (%s)", f.Kind, orDash(f.Running()), f.Operator, when(f.Time), f.EventID)
		switch f.Outcome {
		case "rolled-back":
			line = "Swarm rolled back the " + line
		case "paused":
			line = "Swarm paused the " + line
		}
		if f.Detail != "" {
			line += ": " + f.Detail
		}
		row(p.paint("31", "failed"), line)
	}
	if d := h.Pending; d != nil {
		row(p.paint("33", "pending"), fmt.Sprintf("%s %s by %s at %s (%s): Swarm's verdict not seen yet; meta observe %s --docker, or meta serve, settles it", d.Kind, orDash(d.Running()), d.Operator, when(d.Time), d.EventID, h.Domain))
	}
	if d := h.Deployed; d != nil && d.SettledBy != "" {
		row("settled", fmt.Sprintf("%s by the observation %s", d.Outcome, d.SettledBy))
	}
	if s := h.LastSuccess; s != nil {
		row("last success", fmt.Sprintf("%s %s by %s at %s (%s)", s.Kind, orDash(s.Running()), s.Operator, when(s.Time), s.EventID))
	}
	row("last event", fmt.Sprintf("%s %s by %s at %s (%s)", h.Kind, h.Outcome, h.Operator, when(h.Time), h.EventID))
	if len(h.Secrets) > 0 {
		names := make([]string, len(h.Secrets))
		for i, s := range h.Secrets {
			names[i] = strings.TrimSpace(s.Name + " " + s.Version)
		}
		row("secrets", strings.Join(names, ", "))
	}
	var env []string
	if h.EnvDigest != "" {
		env = append(env, fmt.Sprintf("%s, written by %s at %s", sealed.ShortDigest(h.EnvDigest), h.EnvChanged.Operator, when(h.EnvChanged.Time)))
		if h.EnvChangedSinceDeploy {
			env = append(env, p.paint("33", "changed since the last deploy"))
		}
	}
	if h.Deployed != nil && h.Deployed.LocalEnv {
		env = append(env, p.paint("33", "the last deploy ran with a "+record.LocalEnvNote+", not the log's"))
	}
	if len(env) > 0 {
		row("env", strings.Join(env, "; "))
	}
	if h.MovedTo != "" {
		row("moved to", h.MovedTo)
	}
	if o := h.Observed; o != nil {
		seen := orDash(o.Running())
		if o.UpdateState != "" {
			seen += " (update " + o.UpdateState + ")"
		}
		if o.Missing {
			seen = "no service of the stack"
		}
		where := ""
		if o.Server != "" {
			where = " on " + o.Server
		}
		row("observed", fmt.Sprintf("%s%s at %s (%s) by %s", seen, where, when(o.Time), ago(o.Time, now), o.Operator))
		for _, svc := range o.Services {
			line := fmt.Sprintf("%d/%d running", svc.Running, svc.Desired)
			if svc.UpdateState != "" {
				line += ", update " + svc.UpdateState
			}
			if svc.LastError != "" {
				line += ", last error: " + svc.LastError
			}
			row("  "+svc.Name, line)
		}
	}
	if h.Drift != "" {
		row(p.paint("31", "drift"), h.Drift+": "+h.DriftDetail)
	}
	if channel != nil {
		row("channel", printable(statusText(channel, p)))
	}
	if l := h.Lock; l != nil {
		lock := fmt.Sprintf("by %s until %s (%s left)", l.Holder, when(l.Expires), left(l.Expires.Sub(now)))
		if l.Reason != "" {
			lock += ": " + l.Reason
		}
		row(p.paint("33", "locked"), lock)
	}
	row("events", fmt.Sprint(h.Events))
	if unpushed > 0 {
		row(p.paint("33", "unpushed"), record.Count(unpushed, "event")+" only in this clone; `meta sync` shares them")
	}
	if h.UnknownEvents > 0 {
		row("unknown", record.Count(h.UnknownEvents, "event")+" of kinds a newer meta wrote; upgrade meta to interpret them")
	}
	if h.Forked {
		heads := make([]string, len(h.Heads))
		for i, r := range h.Heads {
			heads[i] = fmt.Sprintf("%s (%s %s by %s)", r.EventID, r.Kind, orDash(r.Running()), r.Operator)
		}
		row(p.paint("31", "forked"), "operators appended without seeing each other: "+strings.Join(heads, ", ")+"; the next append joins them")
	}
	return t.flush()
}

// left says how long a lease has to run, to the second under a minute and
// to the minute above: "42s", "29m".
func left(d time.Duration) string {
	if d = d.Round(time.Second); d < time.Minute {
		return d.String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// writeDrift says in a line whether what Swarm runs is what the log says.
func writeDrift(w io.Writer, h *fold.Head, p painter) error {
	var err error
	switch {
	case h.Drift != "":
		_, err = fmt.Fprintf(w, "%s %s\n", p.paint("31", "drift: "+h.Drift+":"), h.DriftDetail)
	case h.Observed != nil:
		_, err = fmt.Fprintf(w, "no drift: Swarm runs %s, as the log says\n", orDash(h.Observed.Running()))
	}
	return err
}
