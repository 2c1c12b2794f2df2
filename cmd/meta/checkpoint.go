package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newCheckpoint(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Publish the log's derived state, so that new clones read fast",
		Long: `checkpoint syncs, derives the state of the remote's tip (what history
says beyond the tip's tree, and every app's head) and pushes it to the
remote's branch ` + store.DerivedBranch + `, replacing what that held.

The first read of a clone made with a plain ` + "`git clone`" + ` then walks only the
commits since the checkpoint, and answers each app unchanged since from its
memoised head, instead of walking all of history and folding every record:
at 100,000 events, milliseconds instead of seconds. The derived state is
never trusted over the records (an app changed since is folded from its
records), never trusted beyond who may write the log (where meta.yaml
requires signatures, a checkpoint not signed by an operator is ignored),
and always safe to delete. ` + "`meta serve`" + ` publishes one as the log grows;
` + "`meta verify`" + ` checks the published one against the log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if e.offline {
				return usageError{fmt.Errorf("checkpoint pushes to the remote, which --offline forbids")}
			}
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			r, err := s.PublishDerived(cmd.Context(), actor, time.Now())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, r)
			}
			fmt.Fprintf(e.stderr, "meta: published the derived state at %s (%s) to %s\n", r.At[:12], record.Count(r.Apps, "app"), r.Branch)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"commit", "at", "apps", "branch"}`)
	return cmd
}
