package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

func newRelease(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Record a recipe's releases, once, for channels to point at",
		Long: `A release is a version of a recipe (5.1.0+29.0.4), recorded once as an
immutable event in the recipe's releases log, with the recipe commit its tag
points to and, if you like, the images its services run. Channels
(meta channel) point at recorded releases.`,
		Example: `  meta release import nextcloud
  meta release add nextcloud 5.1.0+29.0.4 --commit 3f0c... -m "security fix"
  meta release ls nextcloud`,
	}
	cmd.AddCommand(newReleaseAdd(e), newReleaseImport(e), newReleaseLs(e))
	return cmd
}

func newReleaseAdd(e *env) *cobra.Command {
	var commit, notes string
	var images []string
	cmd := &cobra.Command{
		Use:   "add RECIPE VERSION",
		Short: "Record one release of a recipe",
		Long: `add records VERSION of RECIPE as a release and prints the event's id. VERSION
is a recipe version as abra tags them (5.1.0+29.0.4, 1.2.0); --commit is the
full id of the recipe commit its tag points to. A version recorded already
is refused (exit 4) with the id of its record: releases are immutable.`,
		Example:           `  meta release add nextcloud 5.1.0+29.0.4 --commit 3f0c5e9d2b1a4c6e8f7d9b0a1c2e3f4a5b6c7d8e --image app=nextcloud:29.0.4-fpm`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: e.completeRecipes,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := releaseSpec(args[0], args[1], commit, images, notes)
			if err != nil {
				return usageError{err}
			}
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.AddReleases(cmd.Context(), []store.ReleaseSpec{spec}, false, actor, time.Now(), store.AppendOptions{Offline: e.offline})
			if errors.Is(err, store.ErrRecorded) {
				return recordedAlready(s, spec, err)
			}
			if err != nil {
				return err
			}
			e.appended(cmd, s, &store.Appended{Written: out.Written})
			fmt.Fprintln(e.stdout, out.Events[0].GetId())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&commit, "commit", "", "the recipe commit the version's tag points to: its full id, 40 or 64 hex digits")
	fl.StringArrayVar(&images, "image", nil, "SERVICE=REF: the image a service of the release runs, e.g. app=nextcloud:29.0.4-fpm (repeatable)")
	fl.StringVarP(&notes, "message", "m", "", "release notes, for the log")
	return cmd
}

// recordedAlready says which record holds a release recorded already, so
// that the operator can look at it (meta show ID).
func recordedAlready(s *store.Store, spec store.ReleaseSpec, err error) error {
	rels, rerr := s.Releases(spec.Recipe)
	if rerr != nil {
		return err
	}
	for _, r := range rels {
		if r.Version == spec.Version {
			return fmt.Errorf("%w, by %s at %s (%s); releases are immutable", err, r.Ref.Operator, when(r.Ref.Time), r.Ref.EventID)
		}
	}
	return err
}

// releaseSpec checks what meta release add was given: a recipe name, a
// recipe version, a full commit id and SERVICE=REF images. Names end up in
// paths, terminals and abra's command lines, so nothing is normalised
// beyond a commit's hex digits to lower case.
func releaseSpec(recipe, version, commit string, images []string, notes string) (store.ReleaseSpec, error) {
	spec := store.ReleaseSpec{Recipe: recipe, Version: version, Notes: notes, Images: []fold.Image{}}
	if err := projects.ValidateRecipe(recipe); err != nil {
		return spec, err
	}
	if _, err := abra.ParseVersion(version); err != nil {
		return spec, fmt.Errorf("VERSION: %w", err)
	}
	if commit != "" {
		c := strings.ToLower(commit)
		if (len(c) != 40 && len(c) != 64) || strings.IndexFunc(c, func(r rune) bool { return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') }) >= 0 {
			return spec, fmt.Errorf("--commit %q: want the commit's full id, 40 or 64 hex digits", printable(commit))
		}
		spec.Commit = c
	}
	seen := map[string]bool{}
	for _, im := range images {
		service, ref, ok := strings.Cut(im, "=")
		switch {
		case !ok || service == "" || ref == "":
			return spec, fmt.Errorf("--image %q: want SERVICE=REF, e.g. app=nextcloud:29.0.4-fpm", printable(im))
		case !serviceName(service):
			return spec, fmt.Errorf("--image %q: service %q is not a compose service name (letters, digits, '.', '_' and '-')", printable(im), printable(service))
		case strings.ContainsFunc(ref, func(r rune) bool { return r <= ' ' || r == 0x7f || unsafeRune(r, false) }):
			return spec, fmt.Errorf("--image %q: the reference has a space or control character", printable(im))
		case seen[service]:
			return spec, fmt.Errorf("--image: service %q is given twice", service)
		}
		seen[service] = true
		spec.Images = append(spec.Images, fold.Image{Service: service, Ref: ref})
	}
	return spec, nil
}

// serviceName: a compose service name, [a-zA-Z0-9][a-zA-Z0-9._-]*.
func serviceName(s string) bool {
	for i, r := range s {
		if !(alnum(r) || i > 0 && (r == '.' || r == '_' || r == '-')) {
			return false
		}
	}
	return s != ""
}

func alnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

func newReleaseImport(e *env) *cobra.Command {
	var from, notes string
	cmd := &cobra.Command{
		Use:   "import RECIPE",
		Short: "Record every version tag of a recipe checkout not recorded yet",
		Long: `import reads the tags of the recipe's git checkout (--from, default
$ABRA_DIR/recipes/RECIPE, abra's clone, ~/.abra/recipes/RECIPE without
$ABRA_DIR) and records, in one write, every tag that is a recipe version and
not yet a release, with the commit it points to. It says on stderr which tags
it skipped and why (not a version, recorded already). Nothing new to record
is no error.`,
		Example: `  meta release import nextcloud
  meta release import nextcloud --from ~/src/recipes/nextcloud`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeRecipes,
		RunE: func(cmd *cobra.Command, args []string) error {
			recipe := args[0]
			if err := projects.ValidateRecipe(recipe); err != nil {
				return usageError{err}
			}
			dir := from
			if dir == "" {
				dir = filepath.Join(abra.Dir(e.getenv), "recipes", recipe)
			}
			tags, skipped, err := abra.RecipeTags(cmd.Context(), dir)
			if err != nil {
				return err
			}
			for _, t := range skipped {
				fmt.Fprintf(e.stderr, "meta: skipped tag %s: %s\n", printable(t.Name), message(t.Reason))
			}
			specs := make([]store.ReleaseSpec, len(tags))
			for i, t := range tags {
				specs[i] = store.ReleaseSpec{Recipe: recipe, Version: t.Version, Commit: t.Commit, Notes: notes}
			}
			if len(specs) == 0 {
				fmt.Fprintf(e.stderr, "meta: %s has no version tags: nothing to record\n", printable(dir))
				return nil
			}
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.AddReleases(cmd.Context(), specs, true, actor, time.Now(), store.AppendOptions{Offline: e.offline})
			if out != nil && len(out.Skipped) > 0 {
				fmt.Fprintf(e.stderr, "meta: recorded already: %s\n", printable(strings.Join(out.Skipped, ", ")))
			}
			if errors.Is(err, store.ErrNoChange) {
				fmt.Fprintf(e.stderr, "meta: every version tag of %s is recorded already: nothing new\n", recipe)
				return nil
			}
			if err != nil {
				return err
			}
			e.appended(cmd, s, &store.Appended{Written: out.Written})
			for _, ev := range out.Events {
				fmt.Fprintf(e.stdout, "recorded %s (%s)\n", ev.GetVersion(), ev.GetId())
			}
			fmt.Fprintf(e.stdout, "recorded %s of %s\n", countReleases(len(out.Events)), recipe)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the recipe's git checkout (default $ABRA_DIR/recipes/RECIPE)")
	cmd.Flags().StringVarP(&notes, "message", "m", "", "notes for every release recorded")
	return cmd
}

func countReleases(n int) string {
	if n == 1 {
		return "1 release"
	}
	return itoa(n) + " releases"
}

// releaseRow is a release as meta release ls --json prints it: the
// release's own keys (fold.Release) with its recipe, and the channels that
// point at it.
type releaseRow struct {
	Recipe string `json:"recipe"`
	fold.Release
	Channels []string `json:"channels"`
}

func newReleaseLs(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [RECIPE]",
		Short: "List the recorded releases, oldest version first, with the channels at each",
		Long: `ls lists the releases of RECIPE, or of every recipe, by recipe and then by
version (oldest first; a version meta cannot read, recorded by hand or by an
older meta, after the others), with the commit, who recorded it when, and
the channels that point at it. A recipe with no releases recorded is an
error (exit 1).`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: e.completeRecipes,
		RunE: func(cmd *cobra.Command, args []string) error {
			var recipes []string
			if len(args) == 1 {
				if err := projects.ValidateRecipe(args[0]); err != nil {
					return usageError{err}
				}
			}
			s, err := e.openFresh(cmd.Context())
			if err != nil {
				return err
			}
			var rows []releaseRow
			err = e.answer(cmd.Context(), s, func() error {
				rows = nil
				recipes = args
				if len(args) == 0 {
					all, err := s.Recipes()
					if err != nil {
						return err
					}
					recipes = all
				}
				channels, err := s.Channels(strings.Join(args, ""))
				if err != nil {
					return err
				}
				for _, r := range recipes {
					rels, err := s.Releases(r)
					if err != nil {
						return err
					}
					if len(rels) == 0 && len(args) == 1 {
						return fmt.Errorf("%w: no releases of recipe %s are recorded (meta release import %s)", store.ErrNotFound, r, r)
					}
					sortReleases(rels)
					for _, rel := range rels {
						row := releaseRow{Recipe: r, Release: rel, Channels: []string{}}
						for _, c := range channels {
							if c.Recipe == r && c.Version == rel.Version {
								row.Channels = append(row.Channels, c.Channel)
							}
						}
						rows = append(rows, row)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if asJSON {
				if rows == nil {
					rows = []releaseRow{}
				}
				return writeJSON(e.stdout, rows)
			}
			t := newTable(e.stdout)
			t.row("RECIPE", "VERSION", "COMMIT", "CHANNELS", "RECORDED", "BY", "NOTES")
			for _, r := range rows {
				notes := printable(firstLine(r.Notes))
				r = printableCopy(r)
				commit := r.Commit
				if len(commit) > 12 {
					commit = commit[:12]
				}
				t.row(r.Recipe, r.Version, orDash(commit), orDash(strings.Join(r.Channels, ",")), when(r.Ref.Time), orDash(r.Ref.Operator), notes)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of releases (keys in README.md)")
	return cmd
}

// sortReleases orders releases by version, oldest first (abra's order);
// versions that do not parse go last, by string.
func sortReleases(rels []fold.Release) {
	slices.SortStableFunc(rels, func(a, b fold.Release) int {
		va, erra := abra.ParseVersion(a.Version)
		vb, errb := abra.ParseVersion(b.Version)
		switch {
		case erra == nil && errb == nil:
			return va.Compare(vb)
		case erra == nil:
			return -1
		case errb == nil:
			return 1
		}
		return strings.Compare(a.Version, b.Version)
	})
}

// firstLine is the first line of a note, for a one-line cell; "…" says
// there is more.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\n"); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// completeRecipes offers the log's recipes to the shell, for a command's
// first argument.
func (e *env) completeRecipes(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	s, err := e.open()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	recipes, _ := s.Recipes()
	var out []string
	for _, r := range recipes {
		if strings.HasPrefix(r, toComplete) {
			out = append(out, r)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
