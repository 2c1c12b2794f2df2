package main

import (
	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
)

func newSync(e *env) *cobra.Command {
	var opts store.SyncOptions
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Push this clone's events and bring in everyone else's",
		Long: `sync fetches the remote, puts this clone's unpushed events on top of the
remote's (history stays linear; events never conflict), and pushes.

Whatever the remote holds is taken in: its commits are checked one by one,
and what a commit breaks is quarantined (meta quarantine ls), never folded.
Events the remote lost (someone force-pushed an older history) come back on
top of it. A local commit that changes a file the remote changed too (an env
key set offline on both sides) is set aside (meta aside ls), and the rest
goes on; an env change set aside is re-applied key by key right away when
it collides on no key, with your age identity.

A remote whose history shares no commit with this clone's is refused, since
it may be another collective's log; --rejoin takes it as this log's, its
history rewritten, and re-adds this clone's events on top of it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			if err := s.Sync(cmd.Context(), opts); err != nil {
				return err
			}
			return e.reapplyAfterSync(cmd, s)
		},
	}
	cmd.Flags().BoolVar(&opts.Rejoin, "rejoin", false, "take a remote whose history shares no commit with this clone's, re-adding this clone's events on top")
	return cmd
}

// reapplyAfterSync re-applies the env changes a sync set aside, when there
// are any and meta-seal and an age identity are at hand; else it says how.
func (e *env) reapplyAfterSync(cmd *cobra.Command, s *store.Store) error {
	asides, err := s.Asides(cmd.Context())
	if err != nil {
		return err
	}
	pending := false
	for _, a := range asides {
		pending = pending || a.EnvOnly()
	}
	if !pending {
		return nil
	}
	var f sealFlags
	ev, err := e.envsFor(s, &f)
	if err == nil {
		_, err = ev.Identity()
	}
	if err != nil {
		e.warn("env changes are set aside; `meta env reapply` re-applies them once you can decrypt: %v", err)
		return nil
	}
	return e.reapplied(cmd.Context(), ev, "", false, false)
}
