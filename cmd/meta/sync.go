package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
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
			if opts.Rejoin && e.offline {
				return usageError{fmt.Errorf("--rejoin takes the remote's history, which --offline forbids: leave one out")}
			}
			if e.offline {
				// --offline means no remote work, on every command.
				fmt.Fprintln(e.stderr, "meta: nothing synced: --offline does no remote work")
				return nil
			}
			s, err := e.open()
			if err != nil {
				return err
			}
			start := time.Now()
			report, err := s.Sync(cmd.Context(), opts)
			if err != nil {
				return err
			}
			// What it did, in one line: quiet is for reads, and a sync
			// that says nothing leaves the operator wondering.
			fmt.Fprintf(e.stderr, "meta: synced with %s: %s\n", printable(report.Remote), syncSummary(report))
			return e.reapplyAfterSync(cmd, s, start)
		},
	}
	cmd.Flags().BoolVar(&opts.Rejoin, "rejoin", false, "take a remote whose history shares no commit with this clone's, re-adding this clone's events on top")
	return cmd
}

// reapplyAfterSync re-applies the env changes a sync set aside, when there
// are any and meta-seal and an age identity are at hand; else it says how.
//
// A change this sync set aside that collides is its error (exit 4); one
// set aside before, still colliding, is a warning: the operator was told,
// and the log goes on.
func (e *env) reapplyAfterSync(cmd *cobra.Command, s *store.Store, start time.Time) error {
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
	err = e.reapplied(cmd.Context(), ev, "", false, false)
	var fresh []error
	for _, err := range unjoin(err) {
		var c *envs.CollisionError
		if errors.As(err, &c) && c.Aside.SetAside.Before(start) {
			e.warn("%v", err)
			continue
		}
		fresh = append(fresh, err)
	}
	return errors.Join(fresh...)
}

// unjoin lists the errors errors.Join joined, or err alone.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// syncSummary says what a sync moved: "took in 3 events, pushed 1 event",
// "took in 1 commit without events", or "up to date".
func syncSummary(r store.SyncReport) string {
	var parts []string
	switch {
	case r.TookIn > 0:
		parts = append(parts, "took in "+record.Count(r.TookIn, "event"))
	case r.Commits > 0:
		// Commits without events: meta.yaml changed, or what a warning
		// below says was quarantined.
		parts = append(parts, "took in "+record.Count(r.Commits, "commit")+" without events")
	}
	if r.Pushed > 0 {
		parts = append(parts, "pushed "+record.Count(r.Pushed, "event"))
	}
	if len(parts) == 0 {
		return "up to date"
	}
	return strings.Join(parts, ", ")
}
