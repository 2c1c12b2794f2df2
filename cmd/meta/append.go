package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

type appendFlags struct {
	project, env, version, recipe, chaos, outcome, message, batch string
	command                                                       []string
	// body holds the values of the body flags, by flag name.
	body map[string]*string
}

// bodyFlags are the flags that set a field of an event's body; which kinds
// take them follows from the kinds table in package record.
var bodyFlags = []struct {
	name  string
	body  record.Body
	field string
	usage string
}{
	{"name", record.BodySecret, "name", "secret name"},
	{"secret-version", record.BodySecret, "version", "secret version, e.g. v1"},
	{"volume", record.BodyVolume, "name", "volume name"},
	{"from-server", record.BodyMove, "from_server", "server the app left"},
	{"to-server", record.BodyMove, "to_server", "server the app moved to"},
	{"snapshot", record.BodyRestore, "snapshot", "backup snapshot restored"},
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

An app's first event goes where --project and --env say; else, when abra
has an env file for the app here, where meta exec would put it (meta.yaml's
servers: map for its abra server); else to meta.yaml's defaults. meta says
where on stderr. Later events find the app by its domain. Secret kinds take
--name and --secret-version, never a value.`,
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
			// A new app goes where meta exec would put it: by the abra
			// server its env file is under, if abra has one here.
			server := ""
			if ref, err := projects.ParseRef(args[1]); err == nil {
				server = abra.ServerOf(abra.Dir(e.getenv), ref.App)
			}
			out, viaHub, err := e.appendEvent(cmd.Context(), s, ev, actor, time.Now(), store.AppendOptions{Offline: e.offline, Expect: expect, Force: force, Server: server})
			if err != nil {
				return err
			}
			if viaHub {
				e.newApps(out.NewApps) // the hub publishes what it committed: no nudge
			} else {
				e.appended(cmd, s, out)
			}
			fmt.Fprintln(e.stdout, out.Event.GetId())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.project, "project", "", "project of the app's first event")
	fl.StringVar(&f.env, "env", "", "env (environment or server) of the app's first event")
	fl.StringVar(&f.version, "version", "", "recipe version, e.g. 4.0.0+v1.93.0 (for rollback: the target; "+strings.Join(record.VersionedKinds(), ", ")+")")
	fl.StringVar(&f.recipe, "recipe", "", "recipe name, e.g. matrix-synapse")
	fl.StringVar(&f.chaos, "chaos", "", "chaos version (recipe commit) deployed, e.g. eb96de94+U ("+strings.Join(record.VersionedKinds(), ", ")+")")
	fl.StringVar(&f.outcome, "outcome", "succeeded", "succeeded, failed or aborted")
	fl.StringVarP(&f.message, "message", "m", "", "a note for the log")
	fl.StringVar(&f.batch, "batch", "", "batch id grouping related events")
	f.body = map[string]*string{}
	for _, b := range bodyFlags {
		f.body[b.name] = fl.String(b.name, "", b.usage+" ("+strings.Join(record.KindsWith(b.body), ", ")+")")
	}
	fl.StringSliceVar(&f.command, "command", nil, "the command line that caused the event; an abra line is redacted by abra's grammar, others only of --password-style flags: redact their secrets first")
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
	// Every flag typed must belong to the kind, so nothing typed is
	// silently dropped; the record package says what the body needs.
	body := record.BodyOf(kind)
	values := map[string]string{}
	var errs []error
	if !record.IsVersioned(kind) {
		for _, fv := range [][2]string{{"version", f.version}, {"chaos", f.chaos}} {
			if fv[1] != "" {
				errs = append(errs, fmt.Errorf("--%s does not apply to %s events (only to %s)", fv[0], kindName, strings.Join(record.VersionedKinds(), ", ")))
			}
		}
	}
	for _, b := range bodyFlags {
		v := *f.body[b.name]
		switch {
		case v == "":
		case b.body != body:
			errs = append(errs, fmt.Errorf("--%s does not apply to %s events", b.name, kindName))
		default:
			values[b.field] = v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if body == record.BodyRollback {
		values["target_version"] = f.version
	}
	if err := record.SetBody(ev, values); err != nil {
		var missing *record.FieldError
		if errors.As(err, &missing) {
			for _, b := range bodyFlags {
				if b.body == missing.Body && b.field == missing.Field {
					return nil, fmt.Errorf("%s needs --%s", kindName, b.name)
				}
			}
		}
		return nil, err
	}
	return ev, nil
}
