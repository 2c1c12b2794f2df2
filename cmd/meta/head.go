package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

func newHead(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "head DOMAIN",
		Short:             "Show what the log says is deployed for an app, by whom, since when",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			h, err := s.Head(args[0])
			if err != nil {
				return err
			}
			unpushed, err := s.Unpushed(cmd.Context(), h.Domain)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, headView{Head: h, Unpushed: len(unpushed)})
			}
			return writeHead(e.stdout, h, len(unpushed), e.painter(e.stdout), time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the head as JSON (keys in README.md)")
	return cmd
}

// headView is `meta head --json`: the folded head, plus what only this
// clone knows.
type headView struct {
	*fold.Head
	// Unpushed counts this app's events not on the remote yet.
	Unpushed int `json:"unpushed"`
}

func writeHead(w io.Writer, h *fold.Head, unpushed int, p painter, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
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
	if f := h.LastFailure; f != nil {
		row("failed", fmt.Sprintf("%s %s by %s at %s (%s)", f.Kind, orDash(f.Version), f.Operator, when(f.Time), f.EventID))
	}
	if s := h.LastSuccess; s != nil {
		row("last success", fmt.Sprintf("%s %s by %s at %s (%s)", s.Kind, orDash(s.Version), s.Operator, when(s.Time), s.EventID))
	}
	row("last event", fmt.Sprintf("%s %s by %s at %s (%s)", h.Kind, h.Outcome, h.Operator, when(h.Time), h.EventID))
	if len(h.Secrets) > 0 {
		names := make([]string, len(h.Secrets))
		for i, s := range h.Secrets {
			names[i] = strings.TrimSpace(s.Name + " " + s.Version)
		}
		row("secrets", strings.Join(names, ", "))
	}
	if h.EnvDigest != "" {
		env := fmt.Sprintf("%s, written by %s at %s", sealed.ShortDigest(h.EnvDigest), h.EnvChanged.Operator, when(h.EnvChanged.Time))
		if h.EnvChangedSinceDeploy {
			env += p.paint("33", "; changed since the last deploy")
		}
		row("env", env)
	}
	row("events", fmt.Sprint(h.Events))
	if unpushed > 0 {
		row(p.paint("33", "unpushed"), fmt.Sprintf("%d events only in this clone; `meta sync` shares them", unpushed))
	}
	if h.UnknownEvents > 0 {
		row("unknown", fmt.Sprintf("%d events of kinds a newer meta wrote; upgrade meta to interpret them", h.UnknownEvents))
	}
	if h.Forked {
		heads := make([]string, len(h.Heads))
		for i, r := range h.Heads {
			heads[i] = fmt.Sprintf("%s (%s %s by %s)", r.EventID, r.Kind, orDash(r.Version), r.Operator)
		}
		row(p.paint("31", "forked"), "operators appended without seeing each other: "+strings.Join(heads, ", ")+"; the next append joins them")
	}
	return tw.Flush()
}
