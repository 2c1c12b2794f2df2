package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newVerify(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the whole history of the log by its rules, and the work tree against it",
		Long: `verify checks every commit of the log's history afresh, reading every record.
It reports, one per line, every quarantined commit's problems (a record some
commit modified or deleted, a file under projects/ that is not a valid record
where it lies, a meta.yaml against its schema, an env file changed without its
env event), every env file version with values in clear, and every difference
between the work tree and the branch. It exits 1 when it finds anything not
acknowledged (meta quarantine ack): acknowledged commits are listed, and
stay quarantined.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			var commits atomic.Int64
			stop := e.progress(func() string { return "verify: " + record.Count(int(commits.Load()), "commit") + " read" })
			v, err := s.Verify(cmd.Context(), func() { commits.Add(1) })
			stop()
			if err != nil {
				return err
			}
			if asJSON {
				report := verifyReport{OK: !v.Failed(), Commits: v.Commits, Signatures: signatureCounts(v.Signatures), Findings: v.Findings, Quarantined: quarantineJSON(quarantineOf(v))}
				if report.Findings == nil {
					report.Findings = []store.Finding{}
				}
				if err := writeJSON(e.stdout, report); err != nil {
					return err
				}
			} else {
				for _, f := range v.Findings {
					fmt.Fprintln(e.stdout, printable(f.String()))
				}
			}
			if v.Failed() {
				fmt.Fprintf(e.stderr, "meta: verify: %s in %s (%s; meta doctor explains the ways out)\n", record.Count(len(v.Findings), "problem"), record.Count(v.Commits, "commit"), signatureLine(v.Signatures))
				return silentError{exitFailed}
			}
			known := 0
			for _, f := range v.Findings {
				if f.Acknowledged {
					known++
				}
			}
			line := "meta: verify: " + record.Count(v.Commits, "commit") + " checked (" + signatureLine(v.Signatures) + "), no problems"
			if known > 0 {
				line += " but " + itoa(known) + " acknowledged (meta quarantine ls)"
			}
			fmt.Fprintln(e.stderr, line)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"ok", "commits", "signatures": {"verified", "unsigned", "unknown_key", "bad"}, "findings": [{"path", "commit", "problem", "acknowledged"}], "quarantined": [...]}`)
	return cmd
}

// verifyReport is `meta verify --json`'s output.
type verifyReport struct {
	OK          bool             `json:"ok"`
	Commits     int              `json:"commits"`
	Signatures  signatures       `json:"signatures"`
	Findings    []store.Finding  `json:"findings"`
	Quarantined []quarantineItem `json:"quarantined"`
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

// signatures counts verified commits by what their signature says.
type signatures struct {
	Verified   int `json:"verified"`
	Unsigned   int `json:"unsigned"`
	UnknownKey int `json:"unknown_key"`
	Bad        int `json:"bad"`
}

func signatureCounts(by map[string]int) signatures {
	return signatures{Verified: by[integrity.Verified], Unsigned: by[integrity.Unsigned], UnknownKey: by[integrity.UnknownKey], Bad: by[integrity.BadSignature]}
}

// signatureLine says the counts for people: "3 signed and verified, 2
// unsigned", leaving out what is none.
func signatureLine(by map[string]int) string {
	c := signatureCounts(by)
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{c.Verified, "signed and verified"}, {c.Unsigned, "unsigned"}, {c.UnknownKey, "signed by keys of no operator"}, {c.Bad, "with bad signatures"}} {
		if p.n > 0 {
			parts = append(parts, itoa(p.n)+" "+p.what)
		}
	}
	if len(parts) == 0 {
		return "none signed"
	}
	return strings.Join(parts, ", ")
}
