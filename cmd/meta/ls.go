package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

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
			if asJSON {
				if heads == nil {
					heads = []*fold.Head{}
				}
				return writeJSON(e.stdout, heads)
			}
			p := e.painter(e.stdout)
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "DOMAIN\tPROJECT\tENV\tSTATE\tVERSION\tSINCE\tBY\tNOTE")
			for _, h := range heads {
				h = printableCopy(h)
				var notes []string
				if h.Forked {
					notes = append(notes, p.paint("31", "forked"))
				}
				if h.Drift != "" {
					notes = append(notes, p.paint("31", "drift:"+h.Drift))
				}
				if h.Lock != nil {
					notes = append(notes, p.paint("33", "locked by "+h.Lock.Holder))
				}
				note := strings.Join(notes, " ")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Domain, h.Project, h.Env, p.state(h.State), orDash(h.Running()), when(h.Since), orDash(h.DeployedBy), note)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of heads")
	return cmd
}
