package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newStatus(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the remote, the last sync or failure, unpushed events, quarantined and set-aside commits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			st, err := s.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, st)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			remote := st.Remote
			if remote == "" {
				remote = "none (the log is not shared)"
			}
			fmt.Fprintf(tw, "remote:\t%s\n", remote)
			fmt.Fprintf(tw, "branch:\t%s\n", printable(st.Branch))
			if st.Remote != "" {
				last := "never"
				if !st.LastSync.IsZero() {
					last = when(st.LastSync) + " (" + ago(st.LastSync, time.Now()) + ")"
				}
				fmt.Fprintf(tw, "last sync:\t%s\n", last)
				if st.Failure != "" {
					fmt.Fprintf(tw, "last failure:\t%s (%s): %s\n", when(st.LastFailure), ago(st.LastFailure, time.Now()), printable(st.Failure))
					fmt.Fprintf(tw, "way out:\t%s\n", st.FailureFix)
				}
				fmt.Fprintf(tw, "unpushed:\t%d events\n", len(st.Unpushed))
				for _, u := range st.Unpushed {
					fmt.Fprintf(tw, "\t  %s %s\n", u.EventID, u.Domain)
				}
			}
			if len(st.Quarantined) > 0 {
				fmt.Fprintf(tw, "quarantined:\t%d commits (meta quarantine ls)\n", len(st.Quarantined))
				for _, q := range printableCopy(st.Quarantined) {
					fmt.Fprintf(tw, "\t  %s %s: %s\n", q.Short(), q.Author, q.Summary())
				}
			}
			if len(st.Unsendable) > 0 {
				fmt.Fprintf(tw, "not pushable:\t%d local commits break the log; meta repair takes back what they break\n", len(st.Unsendable))
			}
			if len(st.SetAside) > 0 {
				fmt.Fprintf(tw, "set aside:\t%d commits (meta aside ls)\n", len(st.SetAside))
				for _, a := range printableCopy(st.SetAside) {
					fmt.Fprintf(tw, "\t  %s\n", strings.Join(slices.DeleteFunc([]string{a.Short(), a.Subject, asideKeys(a)}, func(s string) bool { return s == "" }), " ")+": "+a.WayOut())
				}
			}
			if st.Interrupted {
				fmt.Fprintf(tw, "interrupted:\ta killed meta left a write half done; the next meta command finishes it (meta sync)\n")
			}
			if len(st.OtherChanges) > 0 {
				fmt.Fprintf(tw, "not meta's:\t%d changed files meta leaves alone\n", len(st.OtherChanges))
				for _, o := range st.OtherChanges {
					fmt.Fprintf(tw, "\t  %s\n", printable(o))
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"remote", "branch", "last_sync", "last_failure", "failure", "failure_fix", "unpushed", "quarantined", "unsendable", "set_aside", "interrupted", "other_changes"}`)
	return cmd
}
