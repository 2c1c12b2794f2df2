package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newChannel(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "channel",
		Short: "Point a recipe's channels at recorded releases, under rules",
		Long: `A channel (nextcloud/stable) points at one recorded release of its recipe;
apps follow a channel (meta follow). A promotion moves the channel to another
release, as an event saying who, when and from which release. A rule makes a
channel take only releases that have soaked in another: run on every app
following it, deployed, without drift, for the soak time.`,
		Example: `  meta channel promote nextcloud 5.1.0+29.0.4 --to staging
  meta channel rule nextcloud stable --from staging --soak 7d
  meta channel promote nextcloud 5.1.0+29.0.4 --to stable --expect 5.0.3+29.0.1
  meta channel ls nextcloud/stable`,
	}
	cmd.AddCommand(newChannelPromote(e), newChannelRule(e), newChannelLs(e))
	return cmd
}

func newChannelPromote(e *env) *cobra.Command {
	var to, expect, why string
	var force bool
	cmd := &cobra.Command{
		Use:   "promote RECIPE VERSION --to CHANNEL",
		Short: "Move a channel to a recorded release",
		Long: `promote moves RECIPE's channel --to to VERSION, a recorded release (meta
release add or import), and prints the event's id. The channel's log is
pulled first: --expect refuses (exit 4) unless the channel is then at that
version ("none": never promoted), and the channel's rule refuses (exit 4)
a release that has not soaked, naming the apps that have not got there;
--force promotes anyway, and the promotion records that it was forced. A
channel at VERSION already is no error.`,
		Example:           `  meta channel promote nextcloud 5.1.0+29.0.4 --to stable --expect 5.0.3+29.0.1 -m "CVE-2026-1234"`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: e.completeRecipeVersions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageError{fmt.Errorf("%s: missing --to CHANNEL\nusage: %s", cmd.CommandPath(), cmd.UseLine())}
			}
			ref := projects.ChannelRef{Recipe: args[0], Channel: to}
			if err := ref.Validate(); err != nil {
				return usageError{err}
			}
			if _, err := abra.ParseVersion(args[1]); err != nil {
				return usageError{fmt.Errorf("VERSION: %w", err)}
			}
			if expect != "" && expect != "none" {
				if _, err := abra.ParseVersion(expect); err != nil {
					return usageError{fmt.Errorf("--expect: want a version or none: %w", err)}
				}
			}
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.Promote(cmd.Context(), store.PromoteSpec{Channel: ref, Version: args[1], Expect: expect, Message: why, Force: force}, actor, time.Now(), store.AppendOptions{Offline: e.offline})
			if errors.Is(err, store.ErrNoChange) {
				fmt.Fprintf(e.stderr, "meta: %s is at %s already: nothing to promote\n", ref, printable(args[1]))
				return nil
			}
			if err != nil {
				return err
			}
			if a := out.Admission; a != nil {
				if a.OK {
					fmt.Fprintf(e.stderr, "meta: admitted by the rule: %s\n", printable(strings.Join(a.Admitted, ", ")))
				} else {
					for _, w := range a.Waiting {
						e.warn("promoted past the rule (--force): %s", strings.TrimSpace(w.App+" "+w.Reason))
					}
				}
			}
			e.appended(cmd, s, out.Appended)
			fmt.Fprintln(e.stdout, out.Event.GetId())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&to, "to", "", "the channel to move, e.g. stable")
	fl.StringVar(&expect, "expect", "", `refuse unless, after fetching, the channel is at this version ("none": never promoted)`)
	fl.StringVarP(&why, "message", "m", "", "why, for the log")
	fl.BoolVar(&force, "force", false, "promote past the channel's rule (the promotion records that you did)")
	cmd.RegisterFlagCompletionFunc("to", e.completeChannelFlag)
	return cmd
}

func newChannelRule(e *env) *cobra.Command {
	var from, soak, why string
	var none bool
	cmd := &cobra.Command{
		Use:   "rule RECIPE CHANNEL (--from OTHER [--soak DURATION] | --none)",
		Short: "Make a channel take only releases that soaked in another",
		Long: `rule sets the rule of RECIPE's CHANNEL: from then on it may be promoted only
to a release that every app following OTHER runs, deployed successfully and
without drift, for at least --soak (Go's durations, 90m or 24h, or days, 7d;
default 0: deployed and steady is enough). --none drops the rule. Setting
the rule a channel has already is no error.`,
		Example: `  meta channel rule nextcloud stable --from staging --soak 7d -m "a week on staging first"
  meta channel rule nextcloud stable --none`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: e.completeRecipeChannels,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := projects.ChannelRef{Recipe: args[0], Channel: args[1]}
			if err := ref.Validate(); err != nil {
				return usageError{err}
			}
			var d time.Duration
			switch {
			case none && (from != "" || soak != ""):
				return usageError{errors.New("--none drops the rule: it takes no --from or --soak")}
			case !none && !cmd.Flags().Changed("from"):
				return usageError{fmt.Errorf("%s: want --from OTHER, or --none to drop the rule\nusage: %s", cmd.CommandPath(), cmd.UseLine())}
			case from == "" && soak != "":
				return usageError{errors.New("--soak needs --from: a channel to soak in")}
			case from != "":
				if err := projects.ValidateChannel(from); err != nil {
					return usageError{fmt.Errorf("--from: %w", err)}
				}
				if from == ref.Channel {
					return usageError{fmt.Errorf("--from %s: a channel cannot soak in itself", from)}
				}
			}
			if soak != "" {
				var err error
				if d, err = parseDuration(soak); err != nil {
					return usageError{fmt.Errorf("--soak: %w", err)}
				}
			}
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.SetRule(cmd.Context(), ref, from, d, why, actor, time.Now(), store.AppendOptions{Offline: e.offline})
			if errors.Is(err, store.ErrNoChange) {
				fmt.Fprintf(e.stderr, "meta: %s\n", message(strings.TrimPrefix(err.Error(), "channel rule "+ref.String()+": ")))
				return nil
			}
			if err != nil {
				return err
			}
			e.appended(cmd, s, out)
			if from == "" {
				fmt.Fprintf(e.stdout, "%s has no rule (%s)\n", ref, out.Event.GetId())
			} else {
				fmt.Fprintf(e.stdout, "%s takes releases that ran in %s/%s for %s (%s)\n", ref, ref.Recipe, from, d, out.Event.GetId())
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "the channel releases must soak in first, e.g. staging")
	fl.StringVar(&soak, "soak", "", "how long they must run there without drift: 90m, 24h, 7d")
	fl.BoolVar(&none, "none", false, "drop the channel's rule")
	fl.StringVarP(&why, "message", "m", "", "why, for the log")
	cmd.RegisterFlagCompletionFunc("from", e.completeChannelFlag)
	return cmd
}

func newChannelLs(e *env) *cobra.Command {
	var asJSON, history bool
	cmd := &cobra.Command{
		Use:   "ls [RECIPE[/CHANNEL]]",
		Short: "List channels: their release, who promoted it when, their rule and history",
		Long: `ls lists the channels of every recipe, of RECIPE, or the one channel
RECIPE/CHANNEL: the release each points at, who promoted it and when, its
rule, and whether two operators promoted it at once (forked, with both
promotions). --history, or naming one channel, adds every promotion. A
channel or recipe with no log is an error (exit 1).`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: e.completeChannelRefs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var recipe string
			var one *projects.ChannelRef
			if len(args) == 1 {
				if strings.Contains(args[0], "/") {
					ref, err := projects.ParseChannelRef(args[0])
					if err != nil {
						return usageError{err}
					}
					one = &ref
				} else if err := projects.ValidateRecipe(args[0]); err != nil {
					return usageError{err}
				}
				recipe = args[0]
			}
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			var channels []*fold.Channel
			err = e.answer(cmd.Context(), s, func() error {
				if one != nil {
					c, err := s.Channel(*one)
					if err != nil {
						return err
					}
					channels = []*fold.Channel{c}
					return nil
				}
				if recipe != "" {
					recipes, err := s.Recipes()
					if err != nil {
						return err
					}
					if !slices.Contains(recipes, recipe) {
						return fmt.Errorf("%w: recipe %s has no releases or channels in the log", store.ErrNotFound, recipe)
					}
				}
				channels, err = s.Channels(recipe)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, channels)
			}
			if len(channels) == 0 {
				fmt.Fprintln(e.stderr, "meta: no channels yet: meta channel promote RECIPE VERSION --to CHANNEL")
				return nil
			}
			return e.writeChannels(channels, history || one != nil)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of channels, with their history (keys in README.md)")
	cmd.Flags().BoolVar(&history, "history", false, "list every promotion of each channel")
	return cmd
}

// writeChannels prints channels as a table, then, with history, each
// channel's promotions oldest first.
func (e *env) writeChannels(channels []*fold.Channel, history bool) error {
	p := e.painter(e.stdout)
	t := newTable(e.stdout)
	t.row("CHANNEL", "VERSION", "PROMOTED", "BY", "RULE", "NOTE")
	for _, c := range channels {
		c = printableCopy(c)
		promoted, by := "-", "-"
		if c.Promoted != nil {
			promoted, by = when(c.Promoted.Time), orDash(c.Promoted.Operator)
		}
		var notes []string
		if c.Forked {
			var forks []string
			for _, f := range c.Forks {
				forks = append(forks, f.Version+" by "+f.Operator)
			}
			notes = append(notes, p.paint("31", "forked: "+strings.Join(forks, ", ")))
		}
		if c.Promoted != nil && c.Promoted.Forced {
			notes = append(notes, p.paint("33", "forced past the rule"))
		}
		t.row(c.Recipe+"/"+c.Channel, orDash(c.Version), promoted, by, ruleText(c.Rule), strings.Join(notes, " "))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if !history {
		return nil
	}
	for _, c := range channels {
		c = printableCopy(c)
		fmt.Fprintf(e.stdout, "\n%s/%s: %s\n", c.Recipe, c.Channel, record.Count(len(c.History), "promotion"))
		h := newTable(e.stdout)
		for _, pr := range c.History {
			var notes []string
			if pr.Forced {
				notes = append(notes, "forced past the rule")
			}
			if len(pr.Admitted) > 0 {
				notes = append(notes, "admitted by "+strings.Join(pr.Admitted, ", "))
			}
			if pr.Expected != "" {
				notes = append(notes, "expected "+pr.Expected)
			}
			if m, _, _ := strings.Cut(strings.TrimSpace(pr.Message), "\n"); m != "" {
				notes = append(notes, "\""+m+"\"")
			}
			h.row("  "+when(pr.Time), pr.Version, "from "+orNone(pr.Previous), orDash(pr.Operator), pr.EventID, strings.Join(notes, "; "))
		}
		if err := h.flush(); err != nil {
			return err
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ruleText says a rule in a cell: "from staging, soak 168h0m0s".
func ruleText(r *fold.Rule) string {
	if r == nil {
		return "-"
	}
	if r.SoakFor == 0 && r.SoakSeconds == 0 {
		return "from " + r.From
	}
	return "from " + r.From + ", soak " + r.Soak
}

func newFollow(e *env) *cobra.Command {
	var why string
	cmd := &cobra.Command{
		Use:   "follow DOMAIN RECIPE/CHANNEL",
		Short: "Record that an app follows a channel",
		Long: `follow records that the app at DOMAIN follows RECIPE/CHANNEL: meta plan and
meta rollout bring it to the channel's release. The app must be in the log
(exit 1 otherwise), and its recipe, when the log knows it, must be the
channel's (exit 4 otherwise). Following the channel it follows is no error.`,
		Example:           `  meta follow cloud.example.org nextcloud/stable -m "production"`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: e.completeFollow,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := projects.ParseChannelRef(args[1])
			if err != nil {
				return usageError{err}
			}
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.Follow(cmd.Context(), args[0], ref, why, actor, time.Now(), store.AppendOptions{Offline: e.offline})
			if errors.Is(err, store.ErrNoChange) {
				fmt.Fprintf(e.stderr, "meta: %s follows %s already\n", printable(args[0]), ref)
				return nil
			}
			if err != nil {
				return err
			}
			e.appended(cmd, s, out)
			fmt.Fprintf(e.stdout, "%s follows %s (%s)\n", printable(out.Event.GetAddress().GetApp()), ref, out.Event.GetId())
			return nil
		},
	}
	cmd.Flags().StringVarP(&why, "message", "m", "", "why, for the log")
	return cmd
}

func newUnfollow(e *env) *cobra.Command {
	var why string
	cmd := &cobra.Command{
		Use:               "unfollow DOMAIN",
		Short:             "Record that an app follows no channel any more",
		Long:              `unfollow records that the app at DOMAIN follows no channel: plans and rollouts leave it alone. An app that follows none is no error.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.Unfollow(cmd.Context(), args[0], why, actor, time.Now(), store.AppendOptions{Offline: e.offline})
			if errors.Is(err, store.ErrNotFollowing) {
				fmt.Fprintf(e.stderr, "meta: %s follows no channel: nothing to change\n", printable(args[0]))
				return nil
			}
			if err != nil {
				return err
			}
			e.appended(cmd, s, out)
			fmt.Fprintf(e.stdout, "%s follows no channel (%s)\n", printable(out.Event.GetAddress().GetApp()), out.Event.GetId())
			return nil
		},
	}
	cmd.Flags().StringVarP(&why, "message", "m", "", "why, for the log")
	return cmd
}

// Shell completion of recipes, their versions and channels, from the
// local log (completion never fetches).

// channelRefs lists the log's channels as recipe/channel.
func (e *env) channelRefs(recipe string) []string {
	s, err := e.open()
	if err != nil {
		return nil
	}
	channels, _ := s.Channels(recipe)
	var out []string
	for _, c := range channels {
		out = append(out, c.Recipe+"/"+c.Channel)
	}
	return out
}

func withPrefix(list []string, prefix string) []string {
	var out []string
	for _, l := range list {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// completeRecipeVersions: a recipe, then its recorded versions.
func (e *env) completeRecipeVersions(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return e.completeRecipes(cmd, args, toComplete)
	case 1:
		s, err := e.open()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		rels, _ := s.Releases(args[0])
		sortReleases(rels)
		var versions []string
		for _, r := range rels {
			versions = append(versions, r.Version)
		}
		return withPrefix(versions, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeRecipeChannels: a recipe, then its channels.
func (e *env) completeRecipeChannels(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return e.completeRecipes(cmd, args, toComplete)
	case 1:
		var names []string
		for _, r := range e.channelRefs(args[0]) {
			names = append(names, strings.TrimPrefix(r, args[0]+"/"))
		}
		return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeChannelFlag completes --to and --from: the channels of the
// recipe given as the first argument.
func (e *env) completeChannelFlag(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return e.completeRecipeChannels(cmd, args[:1], toComplete)
}

// completeChannelRefs: recipes and recipe/channel.
func (e *env) completeChannelRefs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	recipes, _ := e.completeRecipes(cmd, args, toComplete)
	return append(recipes, withPrefix(e.channelRefs(""), toComplete)...), cobra.ShellCompDirectiveNoFileComp
}

// completeFollow: a domain, then recipe/channel.
func (e *env) completeFollow(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return e.completeDomains(cmd, args, toComplete)
	case 1:
		return withPrefix(e.channelRefs(""), toComplete), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
