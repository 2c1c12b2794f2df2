package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
	}, nil
}

func addIdentityFlag(cmd *cobra.Command, f *sealFlags) {
	cmd.PersistentFlags().StringVar(&f.identity, "identity", "", "age identity (secret key) file to decrypt with (default $SOPS_AGE_KEY_FILE, else $SOPS_AGE_KEY, else ~/.config/sops/age/keys.txt)")
}

func addChangeFlags(cmd *cobra.Command, f *sealFlags, expect bool) {
	cmd.Flags().StringVarP(&f.message, "message", "m", "", "a note for the log")
	if expect {
		cmd.Flags().StringVar(&f.expect, "expect", "", "refuse unless the env file still has this digest (from `meta env get --json` or `meta head`)")
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
		newEnvEdit(e, &f), newEnvExport(e, &f), newEnvDiff(e, &f), newEnvRekey(e, &f), newEnvLs(e))
	return cmd
}

// modifyEnv changes one app's env (see envs.Modify) and reports it: what
// import, set, unset and edit share.
func (e *env) modifyEnv(cmd *cobra.Command, ev *envs.Envs, f *sealFlags, args []string, app *metav1.Address, reason, expect string, change func(cur dotenv.File, exists bool) (dotenv.File, error)) error {
	res, err := ev.Modify(cmd.Context(), app, reason, envs.Note{Message: f.message, Command: commandLine(cmd, args), Expect: expect}, change)
	if err != nil {
		return e.reported(cmd, ev.Store, nil, err)
	}
	return e.reported(cmd, ev.Store, res.Written, nil)
}

// existing refuses, for the app's domain, to change an env the log does
// not hold yet: set and unset need one, import starts one.
func existing(domain string, change func(dotenv.File) (dotenv.File, error)) func(dotenv.File, bool) (dotenv.File, error) {
	return func(cur dotenv.File, exists bool) (dotenv.File, error) {
		if !exists {
			return cur, fmt.Errorf("%w: %s has none in the log; start it with `meta env import`", store.ErrNoEnv, domain)
		}
		return change(cur)
	}
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
	for _, ev := range changed.Events {
		if err := e.publish(cmd.Context(), s, ev); err != nil {
			e.warn("committed, but not announced on NATS: %v", err)
		}
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
			app := &metav1.Address{Project: project, Env: envName, App: args[0]}
			return e.modifyEnv(cmd, ev, f, args, app, "import", f.expect,
				func(dotenv.File, bool) (dotenv.File, error) { return plain, nil })
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "project of an app new to the log")
	cmd.Flags().StringVar(&envName, "env", "", "env of an app new to the log")
	addChangeFlags(cmd, f, true)
	return cmd
}

// envView is `meta env get --json`.
type envView struct {
	Domain    string            `json:"domain"`
	Project   string            `json:"project"`
	Env       string            `json:"env"`
	EnvDigest string            `json:"env_digest"`
	Keys      []string          `json:"keys"`
	Values    map[string]string `json:"values"`
}

func newEnvGet(e *env, f *sealFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get DOMAIN [KEY]",
		Short: "Print an app's decrypted env file, or one value",
		Long: `get decrypts the app's env file and prints it, or only KEY's value. It shows
secret values: that is its job.`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := e.envs(cmd, f, true)
			if err != nil {
				return err
			}
			file, digest, addr, err := ev.Open(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if len(args) == 2 {
				v, ok := file.Get(args[1])
				if !ok {
					return fmt.Errorf("%s is not set in the env of %s", args[1], args[0])
				}
				if asJSON {
					return writeJSON(e.stdout, map[string]string{"key": args[1], "value": v})
				}
				fmt.Fprintln(e.stdout, v)
				return nil
			}
			if asJSON {
				view := envView{Domain: addr.App, Project: addr.Project, Env: addr.Env, EnvDigest: digest, Keys: file.Keys(), Values: map[string]string{}}
				if view.Keys == nil {
					view.Keys = []string{}
				}
				for _, k := range view.Keys {
					view.Values[k], _ = file.Get(k)
				}
				return writeJSON(e.stdout, view)
			}
			_, err = e.stdout.Write(file.Bytes())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (keys in README.md)")
	return cmd
}

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
			type kv struct{ k, v string }
			var sets []kv
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
				sets = append(sets, kv{k, v})
			}
			ev, err := e.envs(cmd, f, false)
			if err != nil {
				return err
			}
			return e.modifyEnv(cmd, ev, f, args, &metav1.Address{App: args[0]}, "set", f.expect,
				existing(args[0], func(cur dotenv.File) (dotenv.File, error) {
					for _, s := range sets {
						if err := cur.Set(s.k, s.v); err != nil {
							return cur, usageError{err}
						}
					}
					return cur, nil
				}))
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
			return e.modifyEnv(cmd, ev, f, args, &metav1.Address{App: args[0]}, "unset", f.expect,
				existing(args[0], func(cur dotenv.File) (dotenv.File, error) {
					var missing []string
					for _, k := range args[1:] {
						if !cur.Unset(k) {
							missing = append(missing, k)
						}
					}
					if len(missing) > 0 {
						return cur, fmt.Errorf("not set in the env of %s: %s", args[0], strings.Join(missing, ", "))
					}
					return cur, nil
				}))
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
file. If another operator changed the env while you edited, nothing is
written and you are told: edit again on top of their change.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := e.envs(cmd, f, true)
			if err != nil {
				return err
			}
			file, digest, _, err := ev.Open(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			edited, err := e.editInTemp(args[0], file.Bytes())
			if err != nil {
				return err
			}
			plain, err := dotenv.Parse("your edit", edited)
			if err != nil {
				return usageError{fmt.Errorf("%w; nothing was written", err)}
			}
			return e.modifyEnv(cmd, ev, f, args, &metav1.Address{App: args[0]}, "edit", digest,
				func(dotenv.File, bool) (dotenv.File, error) { return plain, nil })
		},
	}
	addChangeFlags(cmd, f, false)
	return cmd
}

// editInTemp puts data in a private temporary file, runs the editor on it
// and returns what was saved; the file is overwritten and removed whatever
// happens.
func (e *env) editInTemp(domain string, data []byte) ([]byte, error) {
	dir, err := os.MkdirTemp(e.getenv("XDG_RUNTIME_DIR"), "meta-env-")
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, domain+".env")
	defer func() {
		shred(p)
		os.RemoveAll(dir)
	}()
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return nil, err
	}
	editor := firstNonEmpty(e.getenv("VISUAL"), e.getenv("EDITOR"), "vi")
	// Through the shell, so that EDITOR="code --wait" works as elsewhere.
	c := exec.Command("/bin/sh", "-c", editor+` "$1"`, "editor", p)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("editor %q: %w; nothing was written", editor, err)
	}
	return os.ReadFile(p)
}

// shred overwrites a file before removing it, so that a plain-text env
// does not linger in freed blocks of a disk-backed temporary directory.
func shred(p string) {
	if fi, err := os.Stat(p); err == nil {
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			f.Write(make([]byte, fi.Size()))
			f.Sync()
			f.Close()
		}
	}
	os.Remove(p)
}

func newEnvExport(e *env, f *sealFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export DOMAIN",
		Short: "Write an app's decrypted env file, as abra reads it",
		Long: `export decrypts the app's env into the plain file abra reads, to stdout or, with
-o, to FILE (created with mode 0600, replaced whole).`,
		Example:           `  meta env export matrix.example.com -o ~/.abra/servers/prod.example.com/matrix.example.com.env`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := e.envs(cmd, f, true)
			if err != nil {
				return err
			}
			file, _, _, err := ev.Open(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = e.stdout.Write(file.Bytes())
				return err
			}
			return writePrivate(out, file.Bytes())
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE (mode 0600) instead of stdout")
	return cmd
}

// writePrivate replaces path with data, mode 0600, whole or not at all.
func writePrivate(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newEnvDiff(e *env, f *sealFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff DOMAIN EVENT1 EVENT2",
		Short: "Name the keys that differ between the env files two events ran with",
		Long: `diff compares the env file in force at two events of the app (env events, or
deploys, upgrades and rollbacks, which record the env digest they ran with)
and names the keys added, changed and removed. It prints no values.`,
		Args:              cobra.ExactArgs(3),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := e.envs(cmd, f, true)
			if err != nil {
				return err
			}
			c, err := ev.Diff(cmd.Context(), args[0], args[1], args[2])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, c)
			}
			p := e.painter(e.stdout)
			for _, k := range c.Added {
				fmt.Fprintln(e.stdout, p.paint("32", "+ "+k))
			}
			for _, k := range c.Changed {
				fmt.Fprintln(e.stdout, p.paint("33", "~ "+k))
			}
			for _, k := range c.Removed {
				fmt.Fprintln(e.stdout, p.paint("31", "- "+k))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON: {added, changed, removed}")
	return cmd
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
			return e.rekey(cmd, f, "env rekey", args, args, nil)
		},
	}
	addChangeFlags(cmd, f, false)
	return cmd
}

// envListing is one row of `meta env ls --json`.
type envListing struct {
	Domain     string   `json:"domain"`
	Project    string   `json:"project"`
	Env        string   `json:"env"`
	EnvDigest  string   `json:"env_digest"`
	Recipients []string `json:"recipients"`
	Stale      bool     `json:"stale"`
}

func newEnvLs(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the apps with an env file, and who can read each",
		Long: `ls lists the env files in the log with the operators each is encrypted to; it
decrypts nothing. "stale" marks files whose recipients differ from what
meta.yaml gives access to (meta env rekey fixes them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			files, err := s.EnvFiles()
			if err != nil {
				return err
			}
			cfg := s.Config()
			names := map[string]string{}
			for _, o := range cfg.Operators {
				names[o.Age] = o.Name
			}
			rows := []envListing{}
			for _, f := range files {
				row := envListing{Domain: f.Address.App, Project: f.Address.Project, Env: f.Address.Env, EnvDigest: sealed.Digest(f.Data), Recipients: []string{}}
				for _, r := range sealed.Recipients(f.Data) {
					row.Recipients = append(row.Recipients, firstNonEmpty(names[r], r))
				}
				sort.Strings(row.Recipients)
				row.Stale = cfg.Stale(f.Address.Project, f.Address.Env, f.Data)
				rows = append(rows, row)
			}
			if asJSON {
				return writeJSON(e.stdout, rows)
			}
			p := e.painter(e.stdout)
			for _, r := range rows {
				stale := ""
				if r.Stale {
					stale = "  " + p.paint("33", "stale")
				}
				fmt.Fprintf(e.stdout, "%s\t%s/%s\t%s\t%s%s\n", r.Domain, r.Project, r.Env, sealed.ShortDigest(r.EnvDigest), strings.Join(r.Recipients, ","), stale)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (keys in README.md)")
	return cmd
}
