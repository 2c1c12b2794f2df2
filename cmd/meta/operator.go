package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

func newOperator(e *env) *cobra.Command {
	var f sealFlags
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Manage the operators: their age keys env files are encrypted to, their ssh keys commits are signed with",
		Long: `operator manages the list of operators in meta.yaml: each has a name, the
age recipient (public key) that ` + "`age-keygen`" + ` prints, and the ssh public key
their commits are signed with (optional; see set-ssh). Adding or removing one
re-encrypts, with fresh data keys, every env file whose readers change, in
the same commit; that needs your identity to decrypt them.

Removing an operator stops them reading every env version written from then
on. Versions already in git history stay readable to whoever could read them
then: rotate the secrets themselves (meta env set) if that matters.`,
	}
	addIdentityFlag(cmd, &f)
	add := &cobra.Command{
		Use:   "add NAME --age RECIPIENT [--ssh KEY]",
		Short: "Add an operator, and re-encrypt the env files they may read",
		Example: `  meta operator add alice --age age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  meta operator add alice --age age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --ssh ~/.ssh/id_ed25519.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			recipient, _ := cmd.Flags().GetString("age")
			if recipient == "" {
				return usageError{fmt.Errorf("operator add needs --age RECIPIENT (the age1... key `age-keygen -y KEYFILE` prints)")}
			}
			o := config.Operator{Name: args[0], Age: strings.TrimSpace(recipient)}
			if err := config.ValidOperatorName(o.Name); err != nil {
				return usageError{err}
			}
			if err := config.ValidRecipient(o.Age); err != nil {
				return usageError{err}
			}
			if cmd.Flags().Changed("ssh") {
				v, _ := cmd.Flags().GetString("ssh")
				key, err := sshKeyArg("--ssh", v)
				if err != nil {
					return err
				}
				o.SSH = key
			}
			return e.changed(cmd, &f, args, func(ev *envs.Envs, n envs.Note) (*store.Written, error) { return ev.AddOperator(cmd.Context(), o, n) })
		},
	}
	add.Flags().String("age", "", "the operator's age recipient (public key), age1...")
	add.Flags().String("ssh", "", `the operator's ssh public key, "ssh-ed25519 AAAA... comment", or the .pub file holding it: their commits are signed with it`)
	addChangeFlags(add, &f, false)
	setSSH := &cobra.Command{
		Use:   "set-ssh NAME KEY",
		Short: "Give an operator the ssh public key their commits are signed with",
		Long: `set-ssh sets the ssh public key of operator NAME in meta.yaml, replacing the
one they had. KEY is the key itself ("ssh-ed25519 AAAA... comment", one line,
as in a .pub file) or the path of the .pub file. meta signs every commit with
the operator's key (see "Signed commits" in the README), and ` + "`meta signers`" + `
lists the keys. It re-encrypts no env file.`,
		Example: `  meta operator set-ssh alice ~/.ssh/id_ed25519.pub
  meta operator set-ssh alice "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... alice@laptop"`,
		Args: cobra.ExactArgs(2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveDefault
			}
			return e.operatorNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := sshKeyArg("KEY", args[1])
			if err != nil {
				return err
			}
			return e.changed(cmd, &f, args, func(ev *envs.Envs, _ envs.Note) (*store.Written, error) {
				return ev.SetOperatorSSH(cmd.Context(), args[0], key)
			})
		},
	}
	addChangeFlags(setSSH, &f, false)
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove an operator, and re-encrypt the env files they could read without them",
		Args:  cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return e.operatorNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.changed(cmd, &f, args, func(ev *envs.Envs, n envs.Note) (*store.Written, error) {
				return ev.RemoveOperator(cmd.Context(), args[0], n)
			})
		},
	}
	addChangeFlags(rm, &f, false)
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the operators, their age recipients and their ssh keys' fingerprints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			type row struct {
				Name           string `json:"name"`
				Age            string `json:"age"`
				SSH            string `json:"ssh"`
				SSHFingerprint string `json:"ssh_fingerprint"`
			}
			rows := []row{}
			for _, o := range s.Config().Operators {
				r := row{Name: o.Name, Age: o.Age, SSH: o.SSH}
				if k, err := signing.ParseKey(o.SSH); err == nil {
					r.SSHFingerprint = signing.Fingerprint(k)
				}
				rows = append(rows, r)
			}
			if asJSON {
				return writeJSON(e.stdout, rows)
			}
			for _, r := range rows {
				fp := r.SSHFingerprint
				if fp == "" {
					fp = "-"
				}
				fmt.Fprintf(e.stdout, "%s\t%s\t%s\n", r.Name, printable(r.Age), fp)
			}
			return nil
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print as JSON: [{name, age, ssh, ssh_fingerprint}]")
	cmd.AddCommand(add, setSSH, rm, ls)
	return cmd
}

// changed runs an operator, access or rekey change and reports it.
func (e *env) changed(cmd *cobra.Command, f *sealFlags, args []string, change func(*envs.Envs, envs.Note) (*store.Written, error)) error {
	ev, err := e.envs(cmd, f, false)
	if err != nil {
		return err
	}
	written, err := change(ev, note(cmd, f, args, ""))
	return e.reported(cmd, ev.Store, written, err)
}

// operatorNames offers operator names to the shell.
func (e *env) operatorNames() []string {
	s, err := e.open()
	if err != nil {
		return nil
	}
	var out []string
	for _, o := range s.Config().Operators {
		out = append(out, o.Name)
	}
	return out
}

func newAccess(e *env) *cobra.Command {
	var f sealFlags
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Say which operators may read which projects' and envs' env files",
		Long: `access manages meta.yaml's access rules. A rule gives the operators it names,
and only them, the env files of its scope: "project/env", "project/*" or "*".
The most specific rule wins; a project/env no rule names is readable by every
operator. Changing a rule re-encrypts the env files it affects, in the same
commit.`,
	}
	addIdentityFlag(cmd, &f)
	set := &cobra.Command{
		Use:     "set SCOPE OPERATOR...",
		Short:   "Give exactly these operators access to SCOPE's env files",
		Example: `  meta access set coop/prod alice bob`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := config.ValidScope(args[0]); err != nil {
				return usageError{err}
			}
			return e.changed(cmd, &f, args, func(ev *envs.Envs, n envs.Note) (*store.Written, error) {
				return ev.SetAccess(cmd.Context(), args[0], args[1:], n)
			})
		},
	}
	addChangeFlags(set, &f, false)
	rm := &cobra.Command{
		Use:   "rm SCOPE",
		Short: "Drop SCOPE's rule: its env files fall back to the broader rule, or everyone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.changed(cmd, &f, args, func(ev *envs.Envs, n envs.Note) (*store.Written, error) {
				return ev.RemoveAccess(cmd.Context(), args[0], n)
			})
		},
	}
	addChangeFlags(rm, &f, false)
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the access rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			type row struct {
				Scope     string   `json:"scope"`
				Operators []string `json:"operators"`
			}
			rows := []row{}
			for _, r := range s.Config().Access {
				rows = append(rows, row{r.Scope, r.Operators})
			}
			if asJSON {
				return writeJSON(e.stdout, rows)
			}
			for _, r := range rows {
				fmt.Fprintf(e.stdout, "%s\t%s\n", r.Scope, strings.Join(r.Operators, ","))
			}
			if len(rows) == 0 {
				fmt.Fprintln(e.stderr, "meta: no access rules: every operator may read every env file")
			}
			return nil
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print as JSON: [{scope, operators}]")
	cmd.AddCommand(set, rm, ls)
	return cmd
}

// sshKeyArg reads an ssh public key given on the command line (what names
// it: --ssh, KEY): the key itself, or the path of a file holding it (a
// .pub file). config.ValidSSHKey says what is wrong with anything else.
func sshKeyArg(what, v string) (string, error) {
	key := strings.TrimSpace(v)
	from := ""
	if _, err := config.ValidSSHKey(key); err != nil {
		if data, rerr := os.ReadFile(key); rerr == nil {
			key, from = strings.TrimSpace(string(data)), " (the file "+v+")"
		}
	}
	if _, err := config.ValidSSHKey(key); err != nil {
		return "", usageError{fmt.Errorf("%s%s: %w", what, from, err)}
	}
	return key, nil
}
