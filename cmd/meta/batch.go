package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newBatch(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "batch",
		Short: "Group the events of one piece of work under a summary",
		Long: `batch start opens a batch in this clone; every event appended here until
batch end (by append, exec, env, lock, observe) carries its id and summary,
and meta log shows them grouped under it, on every machine.`,
		Example: `  meta batch start -m "Deployed apps for organisation X"
  meta exec -- abra app deploy a.example.org
  meta exec -- abra app deploy b.example.org
  meta batch end`,
	}
	var summary string
	start := &cobra.Command{
		Use:   "start -m SUMMARY",
		Short: "Open a batch; the events appended here until batch end belong to it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			b, err := s.StartBatch(summary, actor, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, b.ID)
			return nil
		},
	}
	start.Flags().StringVarP(&summary, "message", "m", "", "what the batch is about")
	end := &cobra.Command{
		Use:   "end",
		Short: "Close the open batch",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			b, err := s.EndBatch()
			if err != nil {
				return err
			}
			// A batch closed before anything was recorded in it has no
			// events: that is its answer, not an error.
			_, events, err := s.BatchEvents(b.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			fmt.Fprintf(e.stdout, "closed batch %s (%s): %s\n", b.ID, printable(b.Summary), record.Count(len(events), "event"))
			return nil
		},
	}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show [ID]",
		Short: "List a batch's events, oldest first (default: the last batch started)",
		Long: `show lists the events of the batch ID names (its whole id or, as for every
id meta takes, its start) across the whole log, oldest first. Without ID it
shows the last batch started, open in this clone or closed. A batch no event
of the log names, and none open here, is an error (exit 1).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			named := ""
			if len(args) == 1 {
				named = args[0]
			}
			var id string
			var events []*metav1.Event
			if err := e.answer(cmd.Context(), s, func() (err error) { id, events, err = s.BatchEvents(named); return err }); err != nil {
				return err
			}
			if len(events) == 0 {
				fmt.Fprintf(e.stderr, "meta: batch %s has no events yet\n", id)
			}
			if asJSON {
				return writeEventsJSON(cmd.Context(), e.stdout, s, events)
			}
			return writeEvents(e.stdout, events)
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON Lines, one event per line (keys as meta log --json)")
	cmd.AddCommand(start, end, show)
	return cmd
}
