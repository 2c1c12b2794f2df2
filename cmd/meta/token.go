package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/hub"
	"git.coopcloud.tech/coop-cloud/meta/hub/tokens"
)

func newToken(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the read tokens of this clone's hub (meta serve's JSON API)",
		Long: `token manages the tokens clients of the JSON API that meta serve runs on this
clone must send, as "Authorization: Bearer TOKEN", once there is one. Only a
SHA-256 hash of each is kept, in .git/meta/tokens.json (mode 0600): tokens
belong to this hub, not to the shared log. A running hub takes a new or
removed token into account at its next request.`,
	}
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Make a token and print it: the only time it is shown",
		Example: `  meta token create dashboard`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tokens.ValidName(args[0]); err != nil {
				return usageError{err}
			}
			s, err := e.open()
			if err != nil {
				return err
			}
			token, err := tokens.Create(hub.TokensFile(s), args[0], time.Now())
			if errors.Is(err, tokens.ErrExists) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, token)
			return nil
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a token: a running hub refuses it from its next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			return tokens.Remove(hub.TokensFile(s), args[0])
		},
	}
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the tokens: names, when made, when last used (never the token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			infos, err := tokens.List(hub.TokensFile(s))
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, infos)
			}
			for _, t := range infos {
				used := "never used"
				if t.LastUsed != nil {
					used = "last used " + t.LastUsed.Format(time.RFC3339)
				}
				fmt.Fprintf(e.stdout, "%s\tcreated %s\t%s\n", t.Name, t.Created.Format(time.RFC3339), used)
			}
			return nil
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print as JSON: [{name, created, last_used}]")
	cmd.AddCommand(create, rm, ls)
	return cmd
}
