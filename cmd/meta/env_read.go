package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
)

type envView struct {
	Domain    string            `json:"domain"`
	Project   string            `json:"project"`
	Env       string            `json:"env"`
	EnvDigest string            `json:"env_digest"`
	Keys      []string          `json:"keys"`
	Values    map[string]string `json:"values"`
	Lines     map[string]string `json:"lines"`
}

// envValue is `meta env get DOMAIN KEY --json`.
type envValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Line  string `json:"line"`
}

func newEnvGet(e *env, f *sealFlags) *cobra.Command {
	var asJSON, raw bool
	cmd := &cobra.Command{
		Use:   "get DOMAIN [KEY]",
		Short: "Print an app's decrypted env file, or one value as abra reads it",
		Long: `get decrypts the app's env file and prints it as stored, or KEY's value as
abra reads it: quotes taken off, escapes in double quotes applied, an inline
comment such as abra's "# length=128" left out, $NAME and ${NAME} expanded
from the keys above it. --raw prints KEY's line as stored instead. It shows
secret values: that is its job.`,
		Example: `  meta env get matrix.example.com SMTP_PASSWORD
  meta env get matrix.example.com SECRET_KEY_BASE_VERSION --raw   # SECRET_KEY_BASE_VERSION=v1 # length=128`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			if raw && len(args) < 2 {
				return usageError{errors.New("--raw needs a KEY: without one, get prints the file as stored")}
			}
			ev, err := e.envs(cmd, f, true)
			if err != nil {
				return err
			}
			var file dotenv.File
			var digest string
			var addr projects.Address
			if err := e.answer(cmd.Context(), ev.Store, func() (err error) {
				file, digest, addr, err = ev.Open(cmd.Context(), args[0])
				return err
			}); err != nil {
				return err
			}
			if len(args) == 2 {
				line, ok := file.Line(args[1])
				if !ok {
					return fmt.Errorf("%s is not set in the env of %s", args[1], args[0])
				}
				if raw && !asJSON {
					return e.writePlain(line + "\n")
				}
				v, _, err := file.Value(args[1])
				if err != nil {
					return fmt.Errorf("env of %s: %w; --raw prints its line as stored", args[0], err)
				}
				if asJSON {
					return writeJSON(e.stdout, envValue{Key: args[1], Value: v, Line: line})
				}
				return e.writePlain(v + "\n")
			}
			if asJSON {
				view := envView{Domain: addr.App, Project: addr.Project, Env: addr.Env, EnvDigest: digest, Keys: file.Keys(), Values: map[string]string{}, Lines: map[string]string{}}
				if view.Keys == nil {
					view.Keys = []string{}
				}
				for _, k := range view.Keys {
					if view.Values[k], _, err = file.Value(k); err != nil {
						return fmt.Errorf("env of %s: %w; `meta env get %s %s --raw` prints its line as stored", args[0], err, args[0], k)
					}
					view.Lines[k], _ = file.Line(k)
				}
				return writeJSON(e.stdout, view)
			}
			return e.writePlain(string(file.Bytes()))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (keys in README.md)")
	cmd.Flags().BoolVar(&raw, "raw", false, "print KEY's line as stored (KEY=VALUE, quotes and comment included)")
	return cmd
}

// writePlain prints decrypted text: byte for byte into a pipe or file,
// where it is data, but with control characters escaped on a terminal,
// which would act on them.
func (e *env) writePlain(s string) error {
	if isTerminal(e.stdout) {
		s = printableLines(s)
	}
	_, err := io.WriteString(e.stdout, s)
	return err
}

func newEnvExport(e *env, f *sealFlags) *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "export DOMAIN",
		Short: "Write an app's decrypted env file, as abra reads it",
		Long: `export decrypts the app's env into the plain file abra reads, to stdout or, with
-o, to FILE (created with mode 0600, replaced whole).

The recipe line (TYPE= or RECIPE=) names the version the log says runs, and
so does OPERATOR_SYNC_VERSION when the log's env or FILE has it: abra writes
the version it deploys into its own file, never into the log's env, whose
version is likely the one of its import.

An existing FILE that says anything else the log's env does not (another
value, a key more or less, by what abra reads: quoting aside) is not
replaced: export names those keys, never their values, and exits 4. Record
the file with meta env import, or pass --force to replace it all the same.`,
		Example:           `  meta env export matrix.example.com -o ~/.abra/servers/prod.example.com/matrix.example.com.env`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := e.envs(cmd, f, true)
			if err != nil {
				return err
			}
			path := out
			if path == "-" {
				path = ""
			}
			var res *envs.Exported
			if err := e.answer(cmd.Context(), ev.Store, func() (err error) { res, err = ev.Export(cmd.Context(), args[0], path, force); return err }); err != nil {
				return err
			}
			if path == "" {
				return e.writePlain(string(res.Data))
			}
			if c := res.Overwritten; !c.Empty() {
				e.warn("replaced what %s said otherwise than the log's env: %s", path, strings.Join(slices.Concat(c.Changed, c.Removed, c.Added), ", "))
			}
			if res.Was != "" && res.Was != res.Version {
				e.warn("%s named version %s; the log says %s runs, so it names that now", path, res.Was, orDash(res.Version))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE (mode 0600) instead of stdout")
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE even where it differs from the log's env")
	return cmd
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
			var c dotenv.Changes
			if err := e.answer(cmd.Context(), ev.Store, func() (err error) { c, err = ev.Diff(cmd.Context(), args[0], args[1], args[2]); return err }); err != nil {
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
			listed, err := (&envs.Envs{Store: s}).List()
			if err != nil {
				return err
			}
			rows := []envListing{}
			for _, l := range listed {
				rows = append(rows, envListing{Domain: l.Address.App, Project: l.Address.Project, Env: l.Address.Env, EnvDigest: l.Digest, Recipients: l.Readers, Stale: l.Stale})
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
