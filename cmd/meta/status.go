package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newStatus(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the remote, the last sync, unpushed events and files meta does not manage",
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
			if st.Remote != "" {
				last := "never"
				if !st.LastSync.IsZero() {
					last = when(st.LastSync) + " (" + ago(st.LastSync, time.Now()) + ")"
				}
				fmt.Fprintf(tw, "last sync:\t%s\n", last)
				fmt.Fprintf(tw, "unpushed:\t%d events\n", len(st.Unpushed))
				for _, u := range st.Unpushed {
					fmt.Fprintf(tw, "\t  %s %s\n", u.EventID, u.Domain)
				}
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
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"remote", "last_sync", "unpushed": [...], "other_changes": [...]}`)
	return cmd
}
