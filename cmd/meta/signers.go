package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

func newSigners(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "signers",
		Short: "Print the allowed-signers file: the operators' ssh keys, for git and ssh-keygen",
		Long: `signers prints the allowed-signers file of the log: one line per operator with
an ssh key in meta.yaml, the operator's name as principal, for git commits
only (namespaces="git"). meta keeps it in .git/meta/allowed_signers and names
it in the clone's git config (gpg.ssh.allowedSignersFile), so that
` + "`git log --show-signature`" + ` and ` + "`git verify-commit`" + ` check meta's commits with
no setup; elsewhere, save this output and pass it to
` + "`ssh-keygen -Y verify -f FILE -n git`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			signers := s.Signers()
			if asJSON {
				type row struct {
					Name        string `json:"name"`
					Key         string `json:"key"`
					Fingerprint string `json:"fingerprint"`
				}
				rows := []row{}
				for _, a := range signers {
					rows = append(rows, row{a.Principal, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.Key))), signing.Fingerprint(a.Key)})
				}
				return writeJSON(e.stdout, rows)
			}
			if len(signers) == 0 {
				fmt.Fprintln(e.stderr, "meta: no operator has an ssh key: `meta operator set-ssh NAME KEY` gives one")
				return nil
			}
			_, err = e.stdout.Write(signing.AllowedSigners(signers))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON: [{name, key, fingerprint}]")
	return cmd
}
