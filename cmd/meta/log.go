package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newLog(e *env) *cobra.Command {
	var asJSON bool
	var f logFlags
	cmd := &cobra.Command{
		Use:   "log [DOMAIN] [filters]",
		Short: "List events, newest first: one app's, or every app's",
		Long: `log lists events newest first. For one app the order is the reverse of the
order its head is folded in; for the whole log, by time. --json prints JSON
Lines, one event per line (keys in README.md).

Filters narrow the list; given together, an event must pass them all, and
-n counts what they let through:

  --since, --until WHEN   at or after, at or before WHEN: a duration back from
                          now (90m, 24h, 7d), an RFC 3339 time, or a UTC date
                          (2026-11-30: --since from its start, --until to its
                          end)
  --kind KIND             of this kind (repeat it, or name several: deploy,upgrade)
  --outcome OUTCOME       succeeded, failed or aborted (repeatable too)
  --operator TEXT         whose operator's name or email holds TEXT, in any case
  --project P, --env E    of apps in project P, env E

Text output has a header row; event and batch ids are shortened to their
first 12 characters (longer where two shown would look alike); meta show,
meta purge and every other command that takes an id take them.`,
		Example: `  meta log matrix.example.com -n 5
  meta log --since 24h --kind deploy,upgrade --outcome failed
  meta log --operator alice --since 2026-11-01 --until 2026-11-30 --json`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := f.query(time.Now())
			if err != nil {
				return usageError{err}
			}
			if len(args) == 1 {
				q.Domain = args[0]
			}
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			var events []*metav1.Event
			if err := e.answer(cmd.Context(), s, func() (err error) { events, err = s.Events(q); return err }); err != nil {
				return err
			}
			if asJSON {
				return writeEventsJSON(cmd.Context(), e.stdout, s, events)
			}
			return writeEvents(e.stdout, events)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&asJSON, "json", false, "print JSON Lines")
	fl.IntVarP(&f.n, "number", "n", 0, "show at most N events (0: all)")
	fl.StringVar(&f.since, "since", "", "only events at or after WHEN (24h, 2026-11-30, RFC 3339)")
	fl.StringVar(&f.until, "until", "", "only events at or before WHEN (24h, 2026-11-30 to its end, RFC 3339)")
	fl.StringSliceVar(&f.kinds, "kind", nil, "only events of this kind (repeatable, or comma-separated)")
	fl.StringSliceVar(&f.outcomes, "outcome", nil, "only events with this outcome: succeeded, failed, aborted (repeatable)")
	// On log, --operator filters: it shadows the global flag naming who you
	// are, which a read has no use for.
	fl.StringVar(&f.operator, "operator", "", "only events whose operator's name or email holds this, in any case")
	fl.StringVar(&f.project, "project", "", "only events of apps in this project")
	fl.StringVar(&f.env, "env", "", "only events of apps in this env")
	cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(record.AllKindNames(), cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("outcome", cobra.FixedCompletions([]string{"succeeded", "failed", "aborted"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// logFlags are meta log's filters as typed.
type logFlags struct {
	n                      int
	since, until           string
	kinds, outcomes        []string
	operator, project, env string
}

// query checks the filters and turns them into a store.Query; durations
// count back from now.
func (f logFlags) query(now time.Time) (store.Query, error) {
	q := store.Query{N: f.n, Operator: f.operator, Project: f.project, Env: f.env}
	if f.n < 0 {
		return q, fmt.Errorf("-n must be 0 (all) or more, got %d", f.n)
	}
	var err error
	if q.Since, err = parseWhen("--since", f.since, now, false); err != nil {
		return q, err
	}
	if q.Until, err = parseWhen("--until", f.until, now, true); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Since.After(q.Until) {
		return q, fmt.Errorf("--since %s is after --until %s: no event can be both", f.since, f.until)
	}
	for _, name := range f.kinds {
		k, err := record.ParseAnyKind(strings.TrimSpace(name))
		if err != nil {
			return q, fmt.Errorf("--kind: %w", err)
		}
		q.Kinds = append(q.Kinds, k)
	}
	for _, name := range f.outcomes {
		o, err := record.ParseOutcome(strings.TrimSpace(name))
		if err != nil {
			return q, fmt.Errorf("--outcome: %w", err)
		}
		q.Outcomes = append(q.Outcomes, o)
	}
	if f.project != "" {
		if err := projects.ValidateProject(f.project); err != nil {
			return q, fmt.Errorf("--project: %w", err)
		}
	}
	if f.env != "" {
		if err := projects.ValidateEnv(f.env); err != nil {
			return q, fmt.Errorf("--env: %w", err)
		}
	}
	return q, nil
}

// parseWhen reads a --since or --until value: a duration back from now
// (Go's, as 90m or 24h, or whole days, as 7d), an RFC 3339 time, or a date,
// taken in UTC as meta shows times: its start, or with end its last
// instant, so that --since D --until D is the whole of day D.
func parseWhen(flag, v string, now time.Time, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			t = t.AddDate(0, 0, 1).Add(-time.Nanosecond)
		}
		return t, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want a duration back from now (90m, 24h, 7d), a date (2026-11-30) or an RFC 3339 time (2026-11-30T12:00:00Z)", flag, v)
	}
	return now.Add(-d), nil
}

// parseDuration reads a duration as meta takes them on its command line
// (--since, --soak): Go's (90m, 24h, 1h30m) or whole days (7d), never
// negative.
func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if days, ok := strings.CutSuffix(v, "d"); ok && err != nil {
		var n int
		if n, err = strconv.Atoi(days); err == nil {
			if n > int(math.MaxInt64/int64(24*time.Hour)) {
				err = errors.New("too long")
			}
			d = time.Duration(n) * 24 * time.Hour
		}
	}
	if err == nil && d < 0 {
		err = errors.New("negative")
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (90m, 24h, 7d): %w", v, err)
	}
	return d, nil
}

// writeEventsJSON prints events as JSON Lines, one View per line, with who
// signed each.
func writeEventsJSON(ctx context.Context, w io.Writer, s *store.Store, events []*metav1.Event) error {
	views, err := s.Views(ctx, events)
	if err != nil {
		return err
	}
	for _, v := range views {
		if err := writeJSON(w, v); err != nil {
			return err
		}
	}
	return nil
}

// eventColumns head meta log's text output.
var eventColumns = []string{"TIME", "ID", "DOMAIN", "KIND", "OUTCOME", "WHAT", "OPERATOR", "MESSAGE"}

// writeEvents prints events one per line under a header row, ids
// shortened (store.Abbreviate); the events of a batch that follow each
// other go under one line naming the batch and its summary, and are
// indented. Nothing at all for no events.
func writeEvents(w io.Writer, events []*metav1.Event) error {
	if len(events) == 0 {
		return nil
	}
	var ids []string
	for _, ev := range events {
		ids = append(ids, ev.GetId(), ev.GetBatchId(), ev.GetBrokeLock())
	}
	short := store.Abbreviate(ids)
	abbrev := func(id string) string { return printable(short[id]) }
	t := newTable(w)
	t.row(eventColumns...)
	batch := ""
	for _, ev := range events {
		v := printableCopy(record.ViewOf(ev))
		if ev.GetBatchId() != batch {
			batch = ev.GetBatchId()
			if batch != "" {
				// One cell: the last, never padded, and no column's width.
				t.row(fmt.Sprintf("batch %s: %s", abbrev(batch), orDash(v.BatchSummary)))
			}
		}
		indent := ""
		if batch != "" {
			indent = "  "
		}
		what := v.Version
		if v.ChaosVersion != "" {
			what = strings.TrimSpace(what + " chaos " + v.ChaosVersion)
		}
		msg := v.Message
		switch {
		case v.Secret != nil:
			what = v.Secret.Name + " " + v.Secret.Version
		case v.EnvChange != nil:
			// Which env, and which keys: never values.
			what = "env " + sealed.ShortDigest(v.EnvDigest)
			msg = strings.TrimSpace(v.EnvChange.Summary() + "  " + msg)
		case v.Observation != nil && v.Observation.UpdateState != "":
			what += " (" + v.Observation.UpdateState + ")"
		case v.Lock != nil:
			what = "until " + when(v.Lock.Expires)
		case v.EnvDigest != "":
			what += " (env " + sealed.ShortDigest(v.EnvDigest) + ")"
		case v.LocalEnv:
			what += " (" + record.LocalEnvNote + ")"
		}
		if v.BrokeLock != "" {
			msg = strings.TrimSpace("broke lock " + abbrev(ev.GetBrokeLock()) + "  " + msg)
		}
		t.row(indent+when(v.Time), abbrev(ev.GetId()), v.Domain, v.Kind, v.Outcome, orDash(what), v.Operator, msg)
	}
	return t.flush()
}
