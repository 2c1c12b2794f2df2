package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

func newTrust(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Show the operators this clone pinned, the root its signature checks trace back to",
		Long: `A clone pins the operator list it first trusted, as ssh's known_hosts pins a
host's key: when it first sees the log, and again the first time it sees the
log require signatures (meta.yaml's signatures: required). The pin then moves
with every sync and push to the remote's tip this clone has taken in and
checked, so each operator list after it traces back, signature by signature,
to the one first trusted. A remote whose history no longer holds the pinned
commit was rewritten past what this clone saw: where signatures are required,
meta sync refuses it, nothing taken in, and meta verify, meta doctor and meta
trust fail, until meta trust reset pins the remote as it is now (ask your
collective why first). The next sync puts back what the remote lost, never a
commit history quarantined.

trust prints the pin: the commit, whether signatures were required there, and
each operator's name and key fingerprint, to compare with what the collective
says out of band.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			p, ok, err := s.Pinned()
			if err != nil {
				return err
			}
			if !ok {
				if asJSON {
					return writeJSON(e.stdout, nil)
				}
				fmt.Fprintln(e.stderr, "meta: this clone has pinned no operators yet: the next meta sync does")
				return nil
			}
			holds := s.PinHolds(cmd.Context(), p)
			if asJSON {
				return writeJSON(e.stdout, trustView{Pin: p, Holds: holds == nil})
			}
			writePin(e, p)
			if holds != nil {
				return holds
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"commit", "operators": [{"name", "ssh", "fingerprint"}], "required", "pinned", "holds"}`)
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Pin the remote's history as it is now, once the collective has said why it was rewritten",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			p, err := s.ResetPin(cmd.Context())
			if err != nil {
				return err
			}
			writePin(e, p)
			return nil
		},
	}
	var f sealFlags
	require := &cobra.Command{
		Use:   "require",
		Short: "Require every commit to be signed by an operator (meta.yaml: signatures: required)",
		Long: `require adopts the trust policy: it commits meta.yaml with version: 2,
signatures: required, and signatures_since: the commit it starts on (history
up to it was written before the policy). From this commit on, every commit
must be signed by the key of an operator listed at its parent, this one
included: your signing key must already be an operator's ssh key in
meta.yaml (meta operator set-ssh, in a commit before), or it is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.changed(cmd, &f, args, func(ev *envs.Envs, _ envs.Note) (*store.Written, error) {
				return ev.SetSignatures(cmd.Context(), true)
			})
		},
	}
	addChangeFlags(require, &f, false)
	optional := &cobra.Command{
		Use:   "optional",
		Short: "Stop requiring signatures (itself signed, where they are required)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.changed(cmd, &f, args, func(ev *envs.Envs, _ envs.Note) (*store.Written, error) {
				return ev.SetSignatures(cmd.Context(), false)
			})
		},
	}
	addChangeFlags(optional, &f, false)
	cmd.AddCommand(reset, require, optional)
	return cmd
}

// trustView is `meta trust --json`.
type trustView struct {
	store.Pin
	// Holds says the log's history still holds the pinned commit.
	Holds bool `json:"holds"`
}

func writePin(e *env, p store.Pin) {
	required := "optional"
	if p.Required {
		required = "required"
	}
	fmt.Fprintf(e.stdout, "pinned:     %s at commit %s (signatures %s there)\n", p.Pinned.Format("2006-01-02 15:04:05Z"), p.Commit[:12], required)
	t := newTable(e.stdout)
	t.row("OPERATOR", "FINGERPRINT")
	for _, o := range p.Operators {
		t.row(printable(o.Name), o.Fingerprint)
	}
	t.flush()
}
