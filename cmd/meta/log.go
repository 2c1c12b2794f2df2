package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newLog(e *env) *cobra.Command {
	var asJSON bool
	var n int
	cmd := &cobra.Command{
		Use:   "log [DOMAIN]",
		Short: "List events, newest first: one app's, or every app's",
		Long: `log lists events newest first. For one app the order is the reverse of the
order its head is folded in; for the whole log, by time. --json prints JSON
Lines, one event per line (keys in README.md).`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 0 {
				return usageError{fmt.Errorf("-n must be 0 (all) or more, got %d", n)}
			}
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			domain := ""
			if len(args) == 1 {
				domain = args[0]
			}
			events, err := s.Log(domain, n)
			if err != nil {
				return err
			}
			if asJSON {
				return writeEventsJSON(e.stdout, events)
			}
			return writeEvents(e.stdout, events)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON Lines")
	cmd.Flags().IntVarP(&n, "number", "n", 0, "show at most N events (0: all)")
	return cmd
}

// writeEventsJSON prints events as JSON Lines, one View per line.
func writeEventsJSON(w io.Writer, events []*metav1.Event) error {
	for _, ev := range events {
		if err := writeJSON(w, record.ViewOf(ev)); err != nil {
			return err
		}
	}
	return nil
}

// writeEvents prints events one per line; the events of a batch that
// follow each other go under one line naming the batch and its summary.
func writeEvents(w io.Writer, events []*metav1.Event) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	batch := ""
	for _, ev := range events {
		v := printableCopy(record.ViewOf(ev))
		if v.BatchID != batch {
			batch = v.BatchID
			if batch != "" {
				fmt.Fprintf(tw, "batch %s: %s\n", batch, orDash(v.BatchSummary))
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
			msg = strings.TrimSpace(envSummary(v.EnvChange) + "  " + msg)
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
			msg = strings.TrimSpace("broke lock " + v.BrokeLock + "  " + msg)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", indent, when(v.Time), v.ID, v.Domain, v.Kind, v.Outcome, orDash(what), v.Operator, msg)
	}
	return tw.Flush()
}

// envSummary names an env change's keys, or counts them when there are
// many: "+SMTP_HOST ~DOMAIN", "+100 keys", "rekey to alice,bob".
func envSummary(c *record.EnvView) string {
	if c.Reason == "rekey" {
		return "rekey to " + strings.Join(c.Recipients, ",")
	}
	var parts []string
	for _, g := range []struct {
		sign string
		keys []string
	}{{"+", c.Added}, {"~", c.Changed}, {"-", c.Removed}} {
		switch {
		case len(g.keys) > 3:
			parts = append(parts, g.sign+record.Count(len(g.keys), "key"))
		case len(g.keys) > 0:
			parts = append(parts, g.sign+strings.Join(g.keys, " "+g.sign))
		}
	}
	return strings.Join(parts, " ")
}
