package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/store/record"
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
				fmt.Fprintf(tw, "unpushed:\t%s\n", record.Count(len(st.Unpushed), "event"))
				for _, u := range st.Unpushed {
					fmt.Fprintf(tw, "\t  %s %s\n", u.EventID, u.Domain)
				}
			}
			if len(st.Quarantined) > 0 {
				fmt.Fprintf(tw, "quarantined:\t%s (meta quarantine ls)\n", record.Count(len(st.Quarantined), "commit"))
				for _, q := range printableCopy(st.Quarantined) {
					fmt.Fprintf(tw, "\t  %s %s: %s\n", q.Short(), q.Author, q.Summary())
				}
			}
			if len(st.Unsendable) > 0 {
				fmt.Fprintf(tw, "not pushable:\t%s breaking the log; meta repair takes back what breaks it\n", record.Count(len(st.Unsendable), "local commit"))
			}
			if len(st.SetAside) > 0 {
				fmt.Fprintf(tw, "set aside:\t%s (meta aside ls)\n", record.Count(len(st.SetAside), "commit"))
				for _, a := range printableCopy(st.SetAside) {
					fmt.Fprintf(tw, "\t  %s\n", strings.Join(slices.DeleteFunc([]string{a.Short(), a.Subject, asideKeys(a)}, func(s string) bool { return s == "" }), " ")+": "+a.WayOut())
				}
			}
			if st.Interrupted {
				fmt.Fprintf(tw, "interrupted:\ta killed meta left a write half done; the next meta command finishes it (meta sync)\n")
			}
			if len(st.OtherChanges) > 0 {
				fmt.Fprintf(tw, "not meta's:\t%s meta leaves alone\n", record.Count(len(st.OtherChanges), "changed file"))
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
