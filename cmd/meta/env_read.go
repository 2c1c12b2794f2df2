package main

import (
	"fmt"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"github.com/spf13/cobra"
)

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
			if out != "" && out != "-" {
				return ev.Export(cmd.Context(), args[0], out)
			}
			file, _, _, err := ev.Open(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(file.Bytes())
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE (mode 0600) instead of stdout")
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
