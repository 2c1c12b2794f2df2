package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/store"
)

func newAside(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "aside",
		Short: "Show and drop local commits a sync set aside",
		Long: `A local commit that changes a file the remote changed too (an env file set
offline while another operator pushed a change of the same key, meta.yaml,
a file of yours) cannot be put on top of the remote's. A sync sets it aside
instead of stopping, and everything else goes on. It is kept in the
repository under refs/meta/aside/<commit> (git show refs/meta/aside/<commit>).

An env change set aside is re-applied key by key with meta env reapply;
anything else is re-done by running its command again (aside show names it),
then dropped here.`,
	}
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the commits set aside",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			all, err := s.Asides(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, all)
			}
			if len(all) == 0 {
				fmt.Fprintln(e.stderr, "meta: nothing set aside")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			for _, a := range all {
				a = printableCopy(a)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Short(), when(a.SetAside), a.Author, a.Subject, asideKeys(a))
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, `print [{"commit", "author", "time", "subject", "reason", "set_aside", "files", "events": [{"id", "domain", "kind", "added", "changed", "removed", "command"}]}]`)
	var showJSON bool
	show := &cobra.Command{
		Use:   "show COMMIT",
		Short: "Show a commit set aside: why, its files, its events and the keys they change",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			a, err := s.FindAside(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			a = printableCopy(a)
			if showJSON {
				return writeJSON(e.stdout, a)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "commit:\t%s\n", a.Commit)
			fmt.Fprintf(tw, "author:\t%s\n", a.Author)
			fmt.Fprintf(tw, "subject:\t%s\n", a.Subject)
			fmt.Fprintf(tw, "set aside:\t%s\n", when(a.SetAside))
			fmt.Fprintf(tw, "why:\t%s\n", a.Reason)
			for _, f := range a.Files {
				fmt.Fprintf(tw, "file:\t%s\n", f)
			}
			for _, ev := range a.Events {
				fmt.Fprintf(tw, "event:\t%s %s %s %s\n", ev.ID, ev.Kind, ev.Domain, eventKeys(ev))
				if len(ev.Command) > 0 {
					fmt.Fprintf(tw, "  command:\t%s\n", strings.Join(ev.Command, " "))
				}
			}
			fmt.Fprintf(tw, "next:\t%s\n", a.WayOut())
			return tw.Flush()
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print as JSON (the keys of meta aside ls --json)")
	drop := &cobra.Command{
		Use:   "drop COMMIT",
		Short: "Forget a commit set aside (git may then collect it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.open()
			if err != nil {
				return err
			}
			a, err := s.FindAside(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := s.DropAside(cmd.Context(), a); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "dropped %s\n", a.Short())
			return nil
		},
	}
	cmd.AddCommand(ls, show, drop)
	return cmd
}

// asideKeys names the keys an aside's env changes touch.
func asideKeys(a store.Aside) string {
	var out []string
	for _, ev := range a.Events {
		if k := eventKeys(ev); k != "" {
			out = append(out, ev.Domain+" "+k)
		}
	}
	return strings.Join(out, "; ")
}

func eventKeys(ev store.AsideEvent) string {
	var out []string
	for _, k := range ev.Added {
		out = append(out, "+"+k)
	}
	for _, k := range ev.Changed {
		out = append(out, "~"+k)
	}
	for _, k := range ev.Removed {
		out = append(out, "-"+k)
	}
	return strings.Join(out, " ")
}
