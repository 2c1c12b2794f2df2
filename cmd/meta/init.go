package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

func newInit(e *env) *cobra.Command {
	var opts store.InitOptions
	var remote, branch string
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Start a log in DIR, or join a shared one with --remote",
		Long: `init makes DIR a meta log. Without a git repository there it creates one on
branch main; with one, it adopts it. Either way it commits meta.yaml and
touches nothing else.

With --remote URL it joins the log at URL instead: it clones it into DIR (a
new or empty directory), or, when the remote holds no log yet, starts one and
pushes it. URL is anything git can fetch from and push to: a path, file://,
ssh://, git://, https://; credentials come from git's own setup (ssh agent
and config, credential helpers). The log's branch is found whatever the
remote's HEAD names; when two branches hold a log, init names them and
--branch says which is yours.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("remote") && remote == "" {
				return usageError{fmt.Errorf("--remote needs a URL (leave it out to start a log of this clone only)")}
			}
			if branch != "" && remote == "" {
				return usageError{fmt.Errorf("--branch names the remote's branch to join: it needs --remote")}
			}
			if remote != "" && e.offline {
				return usageError{fmt.Errorf("--remote clones, which --offline forbids: leave one out")}
			}
			actor, err := e.actor(args[0])
			if err != nil {
				return err
			}
			opts.Operator = store.Signature{Name: actor.GetName(), Email: actor.GetEmail(), When: time.Now()}
			// A new log has no operators: only a key the operator named
			// signs its first commit.
			opts.Signer = e.chooseSigner(args[0], config.Config{})
			var s *store.Store
			if remote != "" {
				s, err = store.Join(cmd.Context(), args[0], store.JoinOptions{InitOptions: opts, URL: remote, Branch: branch})
			} else {
				s, err = store.Init(args[0], opts)
			}
			if err != nil {
				return err
			}
			e.opened = append(e.opened, s) // its notes are told, as every command's
			fmt.Fprintln(e.stdout, s.Root())
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Project, "project", "", "default project for apps' first events")
	cmd.Flags().StringVar(&opts.Env, "env", "", "default env for apps' first events")
	cmd.Flags().StringVar(&remote, "remote", "", "join (clone) the log at this git URL, or start it there")
	cmd.Flags().StringVar(&branch, "branch", "", "with --remote: the remote's branch the log lives on, when it holds more than one log")
	return cmd
}
