package main

import (
	"github.com/spf13/cobra"
)

func newSync(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "sync",
		Short: "Push this clone's events and bring in everyone else's",
		Long: `sync fetches the remote, puts this clone's unpushed events on top of the
remote's (history stays linear; events never conflict), and pushes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			return s.Sync(cmd.Context())
		},
	}
}
