package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

type appendFlags struct {
	project, env, version, recipe, chaos, outcome, message, batch string
	name, secretVersion, volume, from, to, snapshot               string
	command                                                       []string
}

func newAppend(e *env) *cobra.Command {
	var f appendFlags
	var expect string
	var force bool
	cmd := &cobra.Command{
		Use:   "append KIND DOMAIN",
		Short: "Record an event for an app and commit it",
		Long: `append records one event for the app at DOMAIN and commits it, then prints the
event's id. KIND is one of: ` + strings.Join(record.KindNames(), ", ") + `.

An app's first event needs --project and --env (or defaults in meta.yaml);
later ones find the app by its domain. Secret kinds take --name and
--secret-version, never a value.`,
		Example: `  meta append deploy matrix.example.com --version 4.0.0+v1.93.0 --project coop --env prod
  meta append upgrade matrix.example.com --version 4.1.0+v1.94.0
  meta append deploy matrix.example.com --version 4.2.0+v1.95.0 --outcome failed -m "migration timed out"
  meta append secret-insert matrix.example.com --name db_password --secret-version v2`,
		Args: cobra.ExactArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return record.KindNames(), cobra.ShellCompDirectiveNoFileComp
			}
			return e.completeDomains(cmd, args, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := f.event(args[0], args[1])
			if err != nil {
				return usageError{err}
			}
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.Append(cmd.Context(), ev, actor, time.Now(), store.AppendOptions{Offline: e.offline, Expect: expect, Force: force})
			if err != nil {
				return err
			}
			e.appended(cmd, s, out)
			fmt.Fprintln(e.stdout, out.Event.GetId())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.project, "project", "", "project of the app's first event")
	fl.StringVar(&f.env, "env", "", "env (environment or server) of the app's first event")
	fl.StringVar(&f.version, "version", "", "recipe version, e.g. 4.0.0+v1.93.0 (for rollback: the target)")
	fl.StringVar(&f.recipe, "recipe", "", "recipe name, e.g. matrix-synapse")
	fl.StringVar(&f.chaos, "chaos", "", "chaos version (recipe commit) deployed, e.g. eb96de94+U")
	fl.StringVar(&f.outcome, "outcome", "succeeded", "succeeded, failed or aborted")
	fl.StringVarP(&f.message, "message", "m", "", "a note for the log")
	fl.StringVar(&f.batch, "batch", "", "batch id grouping related events")
	fl.StringVar(&f.name, "name", "", "secret name (secret kinds)")
	fl.StringVar(&f.secretVersion, "secret-version", "", "secret version, e.g. v1 (secret kinds)")
	fl.StringVar(&f.volume, "volume", "", "volume name (volume-remove)")
	fl.StringVar(&f.from, "from-server", "", "server the app left (move)")
	fl.StringVar(&f.to, "to-server", "", "server the app moved to (move)")
	fl.StringVar(&f.snapshot, "snapshot", "", "backup snapshot restored (restore)")
	fl.StringSliceVar(&f.command, "command", nil, "the command line that caused the event, recorded as given; redact secret values before passing it")
	fl.BoolVar(&force, "force", false, "append despite another operator's lock on the app (the log records that you did)")
	fl.StringVar(&expect, "expect", "", "refuse unless, after fetching, the app's head is at this version or event id")
	cmd.RegisterFlagCompletionFunc("outcome", cobra.FixedCompletions([]string{"succeeded", "failed", "aborted"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// event builds the event the flags describe, refusing flags that do not
// belong to the kind so nothing typed is silently dropped.
func (f *appendFlags) event(kindName, domain string) (*metav1.Event, error) {
	kind, err := record.ParseKind(kindName)
	if err != nil {
		return nil, err
	}
	if !record.Appendable(kind) {
		// Their commands share their names.
		return nil, fmt.Errorf("%s events are written by `meta %s`, which checks what only it knows", kindName, kindName)
	}
	outcome, err := record.ParseOutcome(f.outcome)
	if err != nil {
		return nil, fmt.Errorf("--outcome: %w", err)
	}
	ev := &metav1.Event{
		Kind:         kind,
		Outcome:      outcome,
		Address:      &metav1.Address{Project: f.project, Env: f.env, App: domain},
		Version:      f.version,
		Recipe:       f.recipe,
		ChaosVersion: f.chaos,
		Message:      f.message,
		BatchId:      f.batch,
		Command:      f.command,
	}
	only := func(flag, value string, kinds ...metav1.Kind) error {
		if value == "" {
			return nil
		}
		for _, k := range kinds {
			if k == kind {
				return nil
			}
		}
		return fmt.Errorf("--%s does not apply to %s events", flag, kindName)
	}
	secretKinds := []metav1.Kind{metav1.Kind_KIND_SECRET_GENERATE, metav1.Kind_KIND_SECRET_INSERT, metav1.Kind_KIND_SECRET_REMOVE}
	err = errors.Join(
		only("name", f.name, secretKinds...),
		only("secret-version", f.secretVersion, secretKinds...),
		only("volume", f.volume, metav1.Kind_KIND_VOLUME_REMOVE),
		only("from-server", f.from, metav1.Kind_KIND_MOVE),
		only("to-server", f.to, metav1.Kind_KIND_MOVE),
		only("snapshot", f.snapshot, metav1.Kind_KIND_RESTORE),
	)
	if err != nil {
		return nil, err
	}
	switch kind {
	case metav1.Kind_KIND_ROLLBACK:
		ev.Body = &metav1.Event_Rollback{Rollback: &metav1.Rollback{TargetVersion: f.version}}
	case metav1.Kind_KIND_MOVE:
		ev.Body = &metav1.Event_Move{Move: &metav1.Move{FromServer: f.from, ToServer: f.to}}
	case metav1.Kind_KIND_SECRET_GENERATE, metav1.Kind_KIND_SECRET_INSERT, metav1.Kind_KIND_SECRET_REMOVE:
		if f.name == "" {
			return nil, fmt.Errorf("%s needs --name", kindName)
		}
		ev.Body = &metav1.Event_Secret{Secret: &metav1.Secret{Name: f.name, Version: f.secretVersion}}
	case metav1.Kind_KIND_VOLUME_REMOVE:
		if f.volume == "" {
			return nil, errors.New("volume-remove needs --volume")
		}
		ev.Body = &metav1.Event_Volume{Volume: &metav1.Volume{Name: f.volume}}
	case metav1.Kind_KIND_RESTORE:
		if f.snapshot != "" {
			ev.Body = &metav1.Event_Restore{Restore: &metav1.Restore{Snapshot: f.snapshot}}
		}
	}
	return ev, nil
}
