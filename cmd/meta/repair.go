package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
)

func newRepair(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Take back what commits that break the log's rules did, keeping every valid event",
		Long: `repair is the way out of a commit that breaks the log's rules (a record edited
in place and committed with git commit -a, a file under projects/ that is no
record, a broken meta.yaml, an env file changed without its env event).

Commits this clone has not pushed are replayed without what they break:
every valid event and every file meta does not manage stays, with its
author and message. For what pushed commits broke, one new commit puts the
files back as the log's history has them (records as first written, meta.yaml
and env files as their last valid commit left them, no junk under
projects/), so the tree says what every read says. Then it pushes. Pushed
commits stay quarantined: history is shared (meta quarantine ack silences
them).

A local commit that collides with the remote once the others are taken
back is set aside (meta aside ls).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			r, err := s.Repair(cmd.Context(), actor, e.offline)
			if errors.Is(err, store.ErrNoChange) {
				fmt.Fprintln(e.stderr, "meta: nothing to repair")
				return nil
			}
			if r == nil {
				return err
			}
			if asJSON {
				if jerr := writeJSON(e.stdout, r); jerr != nil {
					return jerr
				}
			} else {
				for _, d := range r.Dropped {
					fmt.Fprintf(e.stdout, "dropped %s from %s: %s\n", printable(d.Path), d.Commit[:12], d.Problem)
				}
				for _, m := range r.Mended {
					fmt.Fprintf(e.stdout, "mended %s: %s\n", printable(m.Path), m.Problem)
				}
				for _, c := range r.SetAside {
					fmt.Fprintf(e.stdout, "set aside %s\n", c[:12])
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"dropped": [{"commit", "path", "problem"}], "mended": [{"path", "problem"}], "set_aside": [...], "commit", "pushed"}`)
	return cmd
}
