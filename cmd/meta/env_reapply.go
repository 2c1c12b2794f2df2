package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/envs"
)

func newEnvReapply(e *env, f *sealFlags) *cobra.Command {
	var mine bool
	cmd := &cobra.Command{
		Use:   "reapply [COMMIT]",
		Short: "Re-apply env changes a sync set aside, key by key, on top of the log's",
		Long: `An env change made offline that collides with one another operator pushed
meanwhile is set aside by the sync (meta aside ls). reapply puts it back on
top of the log's env file key by key: the keys it added, changed or removed
take its values, every other key keeps the log's, and a new env event
records it. meta sync does this by itself when it can decrypt.

When the log changed one of the same keys to another value, that change is
refused (exit 4), named, and stays set aside: --mine gives your values,
meta aside drop keeps the log's. Without COMMIT, every env change set aside
is re-applied, oldest first.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := e.envs(cmd, f, false)
			if err != nil {
				return err
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return e.reapplied(cmd.Context(), ev, id, mine, true)
		},
	}
	cmd.Flags().BoolVar(&mine, "mine", false, "give the change's values to keys the log changed too")
	return cmd
}

// reapplied re-applies env changes set aside and reports them; a collision
// is the error (exit 4). quietNone says nothing when there is nothing.
func (e *env) reapplied(ctx context.Context, ev *envs.Envs, id string, mine, sayNone bool) error {
	done, err := ev.Reapply(ctx, id, mine)
	for _, r := range done {
		for _, res := range r.Results {
			for _, w := range res.Warnings {
				e.warn("%s", w)
			}
			for _, x := range res.Events {
				fmt.Fprintf(e.stdout, "%s re-applies %s for %s\n", x.GetId(), r.Aside.Short(), res.Address.App)
			}
		}
	}
	if len(done) == 0 && err == nil && sayNone {
		fmt.Fprintln(e.stderr, "meta: no env change set aside")
	}
	return err
}
