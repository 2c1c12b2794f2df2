package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
)

func newVerify(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that no record was ever modified or deleted, and that every record is valid",
		Long: `verify reads the whole history of the log. It reports, one per line, every
record that some commit modified or deleted, every file under projects/ that
is not a valid record where it lies, and every difference between the work
tree and the committed records. It exits 1 when it finds anything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			var commits atomic.Int64
			stop := e.progress(func() string { return fmt.Sprintf("verify: %d commits read", commits.Load()) })
			findings, err := s.Verify(cmd.Context(), func() { commits.Add(1) })
			stop()
			if err != nil {
				return err
			}
			if asJSON {
				if findings == nil {
					findings = []store.Finding{}
				}
				report := verifyReport{OK: len(findings) == 0, Commits: commits.Load(), Findings: findings}
				if err := writeJSON(e.stdout, report); err != nil {
					return err
				}
			} else {
				for _, f := range findings {
					fmt.Fprintln(e.stdout, printable(f.String()))
				}
			}
			if len(findings) > 0 {
				fmt.Fprintf(e.stderr, "meta: verify: %d problems in %d commits\n", len(findings), commits.Load())
				return silentError{exitFailed}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"ok", "commits", "findings": [{"path", "commit", "problem"}]}`)
	return cmd
}

// verifyReport is `meta verify --json`'s output.
type verifyReport struct {
	OK       bool            `json:"ok"`
	Commits  int64           `json:"commits"`
	Findings []store.Finding `json:"findings"`
}

// progress shows status() on stderr every quarter second once a second has
// passed, if stderr is a terminal; the returned func stops it and clears
// the line.
func (e *env) progress(status func() string) (stop func()) {
	if !isTerminal(e.stderr) {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		shown := false
		for {
			select {
			case <-done:
				if shown {
					fmt.Fprint(e.stderr, "\r\x1b[K")
				}
				return
			case <-tick.C:
				if time.Since(start) >= time.Second {
					fmt.Fprintf(e.stderr, "\r\x1b[K%s", status())
					shown = true
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}
