package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
)

func newInit(e *env) *cobra.Command {
	var opts store.InitOptions
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Start a log in DIR: create a git repository, or adopt an existing one",
		Long: `init makes DIR a meta log. Without a git repository there it creates one on
branch main; with one, it adopts it. Either way it commits meta.yaml and
touches nothing else.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := e.actor(args[0])
			if err != nil {
				return err
			}
			opts.Operator = store.Signature{Name: actor.GetName(), Email: actor.GetEmail(), When: time.Now()}
			s, err := store.Init(args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, s.Root())
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Project, "project", "", "default project for apps' first events")
	cmd.Flags().StringVar(&opts.Env, "env", "", "default env for apps' first events")
	return cmd
}
