package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// sealFlags are the flags of every command that reads or writes env files.
type sealFlags struct {
	identity string
	message  string
	expect   string
}

// envs opens the log (after a fetch within the cooldown when fresh, as
// reads do; changes fetch anyway) and sets up the env commands' service for
// it, the operator and their identity.
func (e *env) envs(cmd *cobra.Command, f *sealFlags, fresh bool) (*envs.Envs, error) {
	open := e.open
	if fresh {
		open = func() (*store.Store, error) { return e.openFresh(cmd.Context()) }
	}
	s, err := open()
	if err != nil {
		return nil, err
	}
	return e.envsFor(s, f)
}

// envsFor sets up the env commands' service for an open log.
func (e *env) envsFor(s *store.Store, f *sealFlags) (*envs.Envs, error) {
	helper, err := sealed.FindHelper()
	if err != nil {
		return nil, err
	}
	actor, err := e.actor(s.Root())
	if err != nil {
		return nil, err
	}
	return &envs.Envs{
		Store:    s,
		Helper:   helper,
		Identity: func() (sealed.Identity, error) { return sealed.FindIdentity(f.identity, e.getenv) },
		Actor:    actor,
		Now:      time.Now,
		Options:  store.AppendOptions{Offline: e.offline},
		Warn:     e.warn,
	}, nil
}

func addIdentityFlag(cmd *cobra.Command, f *sealFlags) {
	cmd.PersistentFlags().StringVar(&f.identity, "identity", "", "age identity (secret key) file to decrypt with (default $SOPS_AGE_KEY_FILE, else $SOPS_AGE_KEY, else ~/.config/sops/age/keys.txt)")
}

func addChangeFlags(cmd *cobra.Command, f *sealFlags, expect bool) {
	cmd.Flags().StringVarP(&f.message, "message", "m", "", "a note for the log")
	if expect {
		cmd.Flags().StringVar(&f.expect, "expect", "", "refuse unless the env file still has this digest (from meta env get --json, or meta head)")
	}
}

// commandLine is the command as the log records it: meta's own words and
// arguments, with values redacted by the store.
func commandLine(cmd *cobra.Command, args []string) []string {
	return append(strings.Fields(cmd.CommandPath()), args...)
}

func newEnv(e *env) *cobra.Command {
	var f sealFlags
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Keep apps' env files in the log, sops-encrypted to the operators",
		Long: `env keeps each app's env file in the log at projects/<project>/<env>/<app>/<app>.env,
encrypted with sops to the age keys of the operators meta.yaml gives access
(see meta operator and meta access). Every change is committed with an env
event naming the keys added, changed and removed, never a value.

Decrypting needs your age identity: --identity FILE, else $SOPS_AGE_KEY_FILE,
else $SOPS_AGE_KEY, else ~/.config/sops/age/keys.txt. The files are plain
sops files: ` + "`sops decrypt projects/.../<app>.env`" + ` works by hand too.`,
	}
	addIdentityFlag(cmd, &f)
	cmd.AddCommand(newEnvImport(e, &f), newEnvGet(e, &f), newEnvSet(e, &f), newEnvUnset(e, &f),
		newEnvEdit(e, &f), newEnvExport(e, &f), newEnvDiff(e, &f), newEnvRekey(e, &f), newEnvLs(e), newEnvReapply(e, &f))
	return cmd
}

// note is what the operator says about a change, for its event.
func note(cmd *cobra.Command, f *sealFlags, args []string, expect string) envs.Note {
	return envs.Note{Message: f.message, Command: commandLine(cmd, args), Expect: expect}
}

// reportedEnv reports a change of one app's env.
func (e *env) reportedEnv(cmd *cobra.Command, ev *envs.Envs, res *envs.Result, err error) error {
	if err != nil {
		return e.reported(cmd, ev.Store, nil, err)
	}
	return e.reported(cmd, ev.Store, res.Written, nil)
}

// reported finishes a change: "nothing to change" is a quiet success;
// otherwise it prints the event ids and warnings, and tells followers.
func (e *env) reported(cmd *cobra.Command, s *store.Store, changed *store.Written, err error) error {
	if errors.Is(err, store.ErrNoChange) {
		fmt.Fprintln(e.stderr, "meta: nothing to change")
		return nil
	}
	if err != nil {
		return err
	}
	for _, w := range changed.Warnings {
		e.warn("%s", w)
	}
	e.newApps(changed.NewApps)
	if len(changed.Events) > 0 {
		if err := e.nudgeHub(cmd.Context()); err != nil {
			e.warn("committed, but the hub was not told (it finds the events at its next poll): %v", err)
		}
	}
	for _, ev := range changed.Events {
		fmt.Fprintln(e.stdout, ev.GetId())
	}
	return nil
}

func newEnvImport(e *env, f *sealFlags) *cobra.Command {
	var project, envName string
	cmd := &cobra.Command{
		Use:   "import DOMAIN FILE",
		Short: "Encrypt a plain env file (e.g. abra's) into the log, replacing the app's env",
		Long: `import reads FILE ("-" for stdin), a plain env file such as
~/.abra/servers/<server>/<domain>.env, encrypts it to the operators with access
and commits it as the app's env. An app new to the log needs --project and
--env (or defaults in meta.yaml).`,
		Example:           `  meta env import matrix.example.com ~/.abra/servers/prod.example.com/matrix.example.com.env --project coop --env prod`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[1]
			var data []byte
			var err error
			if name == "-" {
				name = "stdin"
				data, err = io.ReadAll(e.stdin)
			} else {
				data, err = os.ReadFile(name)
			}
			if err != nil {
				return usageError{err}
			}
			plain, err := dotenv.Parse(name, data)
			if err != nil {
				return usageError{err}
			}
			ev, err := e.envs(cmd, f, false)
			if err != nil {
				return err
			}
			res, err := ev.Import(cmd.Context(), &metav1.Address{Project: project, Env: envName, App: args[0]}, plain, note(cmd, f, args, f.expect))
			return e.reportedEnv(cmd, ev, res, err)
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "project of an app new to the log")
	cmd.Flags().StringVar(&envName, "env", "", "env of an app new to the log")
	addChangeFlags(cmd, f, true)
	return cmd
}

// envView is `meta env get --json`.
func newEnvSet(e *env, f *sealFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set DOMAIN KEY=VALUE... | KEY",
		Short: "Set keys in an app's env",
		Long: `set changes or adds keys, keeping the file's order and comments. A lone KEY
(no "=") takes its value from stdin, so that it stays out of shell history
and process lists; one trailing newline is dropped. The command line the log
records has every value redacted.`,
		Example: `  meta env set matrix.example.com SMTP_HOST=mail.example.com SMTP_PORT=587
  pass show smtp | meta env set matrix.example.com SMTP_PASSWORD`,
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			var sets []envs.KV
			fromStdin := 0
			for _, a := range args[1:] {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					fromStdin++
					if fromStdin > 1 {
						return usageError{errors.New("only one KEY can take its value from stdin")}
					}
					data, err := io.ReadAll(e.stdin)
					if err != nil {
						return err
					}
					v = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
				}
				if err := dotenv.ValidKey(k); err != nil {
					return usageError{err}
				}
				sets = append(sets, envs.KV{Key: k, Value: v})
			}
			ev, err := e.envs(cmd, f, false)
			if err != nil {
				return err
			}
			res, err := ev.Set(cmd.Context(), args[0], sets, note(cmd, f, args, f.expect))
			return e.reportedEnv(cmd, ev, res, err)
		},
	}
	addChangeFlags(cmd, f, true)
	return cmd
}

func newEnvUnset(e *env, f *sealFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "unset DOMAIN KEY...",
		Short:             "Remove keys from an app's env",
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := e.envs(cmd, f, false)
			if err != nil {
				return err
			}
			res, err := ev.Unset(cmd.Context(), args[0], args[1:], note(cmd, f, args, f.expect))
			return e.reportedEnv(cmd, ev, res, err)
		},
	}
	addChangeFlags(cmd, f, true)
	return cmd
}

func newEnvEdit(e *env, f *sealFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "edit DOMAIN",
		Short: "Edit an app's env in $EDITOR and commit the result",
		Long: `edit decrypts the app's env into a private temporary file (mode 0600, in
$XDG_RUNTIME_DIR when set), opens it in $VISUAL or $EDITOR (default vi), then
encrypts and commits what you saved and overwrites and removes the temporary
file. Saved unchanged, or emptied, nothing is written.

As kubectl edit does, it opens the editor again instead of throwing your edit
away: when what you saved is not a dotenv file (a header at the top, its lines
starting with #~, says what is wrong and on which line; meta drops them), and
when another operator changed the env while you edited (your edit is put on
top of their change; keys you both changed stand between git's conflict
markers, <<<<<<< yours and >>>>>>> theirs, for you to settle). Saving a file
reopened for a fix unchanged stops, as does any failure: your edit is then
kept in a private file, which meta names.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := e.envs(cmd, f, true)
			if err != nil {
				return err
			}
			res, err := ev.Edit(cmd.Context(), args[0], e.getenv("XDG_RUNTIME_DIR"), e.editor, note(cmd, f, args, ""))
			if errors.Is(err, envs.ErrCancelled) {
				fmt.Fprintf(e.stderr, "meta: %s\n", message(err.Error()))
				return nil
			}
			return e.reportedEnv(cmd, ev, res, err)
		},
	}
	addChangeFlags(cmd, f, false)
	return cmd
}

// editor runs $VISUAL or $EDITOR (default vi) on path, with the
// operator's terminal.
func (e *env) editor(path string) error {
	editor := firstNonEmpty(e.getenv("VISUAL"), e.getenv("EDITOR"), "vi")
	// Through the shell, so that EDITOR="code --wait" works as elsewhere.
	c := exec.Command("/bin/sh", "-c", editor+` "$1"`, "editor", path)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("editor %q: %w", editor, err)
	}
	return nil
}

func newEnvRekey(e *env, f *sealFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rekey [DOMAIN...]",
		Short: "Re-encrypt env files to the operators meta.yaml gives access, with new data keys",
		Long: `rekey re-encrypts, with a fresh data key, the env files of the DOMAINs given,
and every env file whose recipients differ from what meta.yaml's operators
and access rules say (after meta.yaml was edited by hand, say). All in one
commit, with an env event per file. meta operator and meta access do this
themselves.`,
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.changed(cmd, f, args, func(ev *envs.Envs, n envs.Note) (*store.Written, error) {
				return ev.Rekey(cmd.Context(), "env rekey", n, args, nil)
			})
		},
	}
	addChangeFlags(cmd, f, false)
	return cmd
}

// envListing is one row of `meta env ls --json`.
