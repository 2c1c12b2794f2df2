package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
)

func newPurge(e *env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "purge EVENT_ID --reason TEXT",
		Short: "Take an event out of the log on purpose, recording who did and why",
		Long: `purge is the one way to take an event out of the log. It commits, together,
the deletion of the event's record and a purge event that names the event,
who purged it and why (--reason, required; never what the event held).
Every read leaves the event out from then on, in every clone; a commit that
adds the record again is quarantined, and a sync after a force-push does
not bring it back. EVENT_ID is the event's whole id or its start, as meta
log shows it (at least 4 characters, naming one event).

Deleting a record any other way (git rm, a force-push of an older history)
is quarantined or undone: the event comes back.

The record stays in git's history. To erase it there too (a secret pasted
into a message), rewrite the history (git filter-repo) keeping the purge
commit, force-push, and have every clone sync: each takes the rewritten
history in and, seeing the purge event, does not put the record back.`,
		Example: `  meta purge 01JD6M4S2ZC8T3E7R9Q1W5X0YB --reason "recorded against the wrong app"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.Purge(cmd.Context(), args[0], reason, actor, time.Now(), store.AppendOptions{Offline: e.offline})
			if err != nil {
				return err
			}
			e.appended(cmd, s, out)
			fmt.Fprintf(e.stdout, "purged %s from %s (%s)\n", out.Event.GetPurge().GetEventId(), out.Event.GetAddress().GetApp(), out.Event.GetId())
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the event is purged (required; kept in the log)")
	return cmd
}
