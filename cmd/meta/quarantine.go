package main

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
)

func newQuarantine(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine",
		Short: "List and acknowledge commits that break the log's rules",
		Long: `A commit that breaks the log's rules (it modifies or deletes a record, adds a
file under projects/ that is no valid record where it lies, breaks meta.yaml,
or changes an env file without its env event) is quarantined, not refused:
its history is taken in, what it breaks is never read (a record is read as
its first commit wrote it, meta.yaml and env files as their last valid
commit left them), and every read warns about it until it is acknowledged
here. Acknowledging silences the warnings in this clone only; the commit
stays quarantined and meta verify lists it.

meta never pushes a quarantined commit: meta repair takes back what an
unpushed one breaks.`,
	}
	var all, asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the quarantined commits not acknowledged (--all: every one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			qs, err := s.Quarantine(cmd.Context(), all)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, quarantineJSON(qs))
			}
			writeQuarantine(e, qs)
			return nil
		},
	}
	ls.Flags().BoolVar(&all, "all", false, "list acknowledged commits too")
	ls.Flags().BoolVar(&asJSON, "json", false, `print [{"commit", "author", "time", "subject", "acknowledged", "problems": [{"path", "problem"}]}]`)
	var ackAll bool
	ack := &cobra.Command{
		Use:   "ack COMMIT...",
		Short: "Stop the warnings about quarantined commits in this clone",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !ackAll {
				return fmt.Errorf("name the commits to acknowledge (meta quarantine ls lists them), or pass --all")
			}
			if len(args) > 0 && ackAll {
				return fmt.Errorf("--all takes no commits")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			done, err := s.Acknowledge(cmd.Context(), args)
			if err != nil {
				return err
			}
			for _, q := range done {
				fmt.Fprintf(e.stdout, "acknowledged %s by %s\n", q.Short(), printable(q.Author))
			}
			return nil
		},
	}
	ack.Flags().BoolVar(&ackAll, "all", false, "acknowledge every quarantined commit")
	cmd.AddCommand(ls, ack)
	return cmd
}

// quarantineItem is one quarantined commit in JSON.
type quarantineItem = store.Quarantined

func quarantineJSON(qs []store.Quarantined) []quarantineItem {
	if qs == nil {
		return []quarantineItem{}
	}
	return qs
}

// quarantineOf marks the findings of v's quarantined commits as
// acknowledged or not, for verify's JSON.
func quarantineOf(v *store.Verification) []store.Quarantined {
	acked := map[string]bool{}
	for _, f := range v.Findings {
		if f.Commit != "" && f.Acknowledged {
			acked[f.Commit] = true
		}
	}
	out := make([]store.Quarantined, 0, len(v.Quarantined))
	for _, f := range v.Quarantined {
		out = append(out, store.Quarantined{Finding: f, Acknowledged: acked[f.Commit]})
	}
	return out
}

func writeQuarantine(e *env, qs []store.Quarantined) {
	if len(qs) == 0 {
		fmt.Fprintln(e.stderr, "meta: no quarantined commits")
		return
	}
	// The commits' columns line up; each problem goes on a line of its own
	// below its commit, so a long path pushes nothing off the screen.
	width := 0
	for i := range qs {
		qs[i] = printableCopy(qs[i])
		width = max(width, utf8.RuneCountInString(qs[i].Author))
	}
	for _, q := range qs {
		ack := ""
		if q.Acknowledged {
			ack = " (acknowledged)"
		}
		pad := strings.Repeat(" ", width-utf8.RuneCountInString(q.Author))
		fmt.Fprintf(e.stdout, "%s  %s  %s%s  %s%s\n", q.Short(), when(q.Time), q.Author, pad, q.Subject, ack)
		for _, p := range q.Problems {
			fmt.Fprintf(e.stdout, "    %s: %s\n", p.Path, p.What)
		}
	}
}
