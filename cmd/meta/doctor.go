package main

import (
	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/doctor"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
)

func newDoctor(e *env) *cobra.Command {
	var asJSON bool
	var identity string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check, read-only, everything this clone needs, and name the way out of each problem",
		Long: `doctor changes nothing. It checks the log and its branch, the remote (asking
it now, and quoting all git says when it does not answer), who you are and
whether meta.yaml knows you, meta-seal and your age identity (decrypting the
env files in memory), NATS when one is configured, and the states a clone can
be left in: quarantined commits, unpushed events, commits a sync set aside, a
write a killed meta left half done, hand edits of the work tree. For each
problem it names the command that gets out of it. It exits 1 when a check
finds a problem, 0 when there are only warnings.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, openErr := e.open()
			url, nopts, err := e.natsOptions()
			if err != nil {
				return usageError{err}
			}
			nopts.URL = url
			in := doctor.Inputs{
				Store:   s,
				OpenErr: openErr,
				Operator: func() (*metav1.Actor, error) {
					root := "."
					if s != nil {
						root = s.Root()
					}
					return e.actor(root)
				},
				Helper:   sealed.FindHelper,
				Identity: func() (sealed.Identity, error) { return sealed.FindIdentity(identity, e.getenv) },
				NATS:     nopts,
				Offline:  e.offline,
			}
			checks := doctor.Run(cmd.Context(), in)
			if asJSON {
				if err := writeJSON(e.stdout, checks); err != nil {
					return err
				}
			} else {
				p := e.painter(e.stdout)
				t := newTable(e.stdout)
				for _, c := range printableCopy(checks) {
					mark := map[doctor.Severity]string{doctor.OK: p.paint("32", "ok"), doctor.Warning: p.paint("33", "warning"), doctor.Problem: p.paint("31", "problem")}[c.Severity]
					t.row(c.Name, mark, printableLines(c.Detail))
					if c.Fix != "" {
						t.row("", "", "→ "+c.Fix)
					}
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			if doctor.Failed(checks) {
				return silentError{exitFailed}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print [{"check", "status": "ok"|"warning"|"problem", "detail", "fix"}]`)
	cmd.Flags().StringVar(&identity, "identity", "", "age identity file to try (default as the env commands find it)")
	return cmd
}
