package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

func newLs(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List every app with its head",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			heads, err := s.List()
			if err != nil {
				return err
			}
			statusOf, err := channelStatusAmong(e, s, "", time.Now())
			if err != nil {
				return err
			}
			status := map[*fold.Head]*plan.Status{}
			for _, h := range heads {
				status[h] = statusOf(h)
			}
			if asJSON {
				reports, err := s.Reports(cmd.Context(), heads)
				if err != nil {
					return err
				}
				views := make([]lsView, 0, len(heads))
				for i, r := range reports {
					views = append(views, lsView{HeadReport: r, Channel: status[heads[i]]})
				}
				return writeJSON(e.stdout, views)
			}
			p := e.painter(e.stdout)
			t := newTable(e.stdout)
			t.row("DOMAIN", "PROJECT", "ENV", "STATE", "VERSION", "SINCE", "BY", "NOTE")
			for _, h := range heads {
				st := status[h]
				h = printableCopy(h)
				var notes []string
				if st != nil && st.Lags {
					notes = append(notes, p.paint("33", "lags:"+printable(st.Channel+"@"+orDash(st.Version))))
				}
				if h.Forked {
					notes = append(notes, p.paint("31", "forked"))
				}
				if h.Drift != "" {
					notes = append(notes, p.paint("31", "drift:"+h.Drift))
				}
				if h.Lock != nil {
					notes = append(notes, p.paint("33", "locked by "+h.Lock.Holder))
				}
				if problems, err := s.AppProblems(cmd.Context(), projects.Address{Project: h.Project, Env: h.Env, App: h.Domain}); err == nil {
					open := 0 // acknowledged ones are known, and read about
					for _, f := range problems {
						if !f.Acknowledged {
							open++
						}
					}
					if open > 0 {
						notes = append(notes, p.paint("31", "quarantined:"+itoa(open)))
					}
				}
				note := strings.Join(notes, " ")
				t.row(h.Domain, h.Project, h.Env, p.state(h.State), orDash(h.Running()), when(h.Since), orDash(h.DeployedBy), note)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of heads (keys as meta head --json, without unpushed)")
	return cmd
}

// lsView is one element of `meta ls --json`: the head, and how it stands
// against its channel, as meta head --json has them.
type lsView struct {
	store.HeadReport
	Channel *plan.Status `json:"channel"`
}
