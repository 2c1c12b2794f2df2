package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
)

func newLock(e *env) *cobra.Command {
	var ttl time.Duration
	var reason string
	var force bool
	cmd := &cobra.Command{
		Use:   "lock DOMAIN",
		Short: "Lease an app to yourself for work in progress",
		Long: `lock appends a lock event: until it expires (--ttl) or you run meta unlock,
appends and meta exec for the app by other operators are refused with who
holds it, why and until when. A lock is a lease and ends on its own: it
can never get stuck. Run lock again to renew yours.

The lock counts only once it is on the remote: of two operators locking at
once, exactly one wins and the other is refused (exit 5). --offline locks
this clone only.`,
		Example:           `  meta lock matrix.example.com --ttl 30m -m "upgrading postgres"`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.Lock(cmd.Context(), args[0], actor, time.Now(), ttl, reason, store.AppendOptions{Offline: e.offline, Force: force})
			if err != nil {
				return err
			}
			e.appended(cmd, s, out)
			fmt.Fprintf(e.stdout, "locked %s until %s (%s)\n", args[0], out.Event.GetLock().GetExpires().AsTime().Local().Format("2006-01-02 15:04:05 MST"), out.Event.GetId())
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 30*time.Minute, "how long the lease lasts, at most 24h")
	cmd.Flags().StringVarP(&reason, "message", "m", "", "what you are doing, for whoever is refused")
	cmd.Flags().BoolVar(&force, "force", false, "take the lock from another operator (the log records that you did)")
	return cmd
}

func newUnlock(e *env) *cobra.Command {
	var message string
	var force bool
	cmd := &cobra.Command{
		Use:               "unlock DOMAIN",
		Short:             "End your lease on an app before it expires",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.Unlock(cmd.Context(), args[0], actor, time.Now(), message, store.AppendOptions{Offline: e.offline, Force: force})
			if err != nil {
				return err
			}
			e.appended(cmd, s, out)
			fmt.Fprintf(e.stdout, "unlocked %s (%s)\n", args[0], out.Event.GetId())
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "a note for the log")
	cmd.Flags().BoolVar(&force, "force", false, "end another operator's lock (the log records that you did)")
	return cmd
}

// newApps says where a write started the logs of new apps, one line each,
// the same from every command that can start one.
func (e *env) newApps(placed []store.Placement) {
	for _, p := range placed {
		fmt.Fprintf(e.stderr, "meta: %s\n", message(p.String()))
	}
}

// appended tells the operator and NATS about an event just appended.
func (e *env) appended(cmd *cobra.Command, s *store.Store, out *store.Appended) {
	for _, w := range out.Warnings {
		e.warn("%s", w)
	}
	e.newApps(out.NewApps)
	if err := e.nudgeHub(cmd.Context()); err != nil {
		e.warn("appended, but the hub was not told (it finds the event at its next poll): %v", err)
	}
}
