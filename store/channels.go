package store

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Releases, channels and follows: a recipe's releases and each of its
// channels are logs of their own under projects/_recipes/ (see
// projects.Recipes), written and read through the same commit path and
// integrity as an app's; which channel an app follows is in the app's log.

var (
	// ErrRecorded: the release is in the log already.
	ErrRecorded = errors.New("release recorded already")
	// ErrNoRelease: the version is not a recorded release of the recipe.
	ErrNoRelease = errors.New("no such release")
	// ErrNotAdmitted: the channel's rule does not let the release through
	// yet; the error is a *NotAdmittedError saying which apps wait.
	ErrNotAdmitted = errors.New("not admitted by the channel's rule")
	// ErrRecipe: the app's recipe is not the channel's.
	ErrRecipe = errors.New("recipe mismatch")
	// ErrNotFollowing: the app follows no channel.
	ErrNotFollowing = errors.New("follows no channel")
)

// Recipes lists the recipes the log has logs of, sorted.
func (s *Store) Recipes() ([]string, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	return s.recipes(tip)
}

func (s *Store) recipes(tip gitrepo.Hash) ([]string, error) {
	names, err := s.dirs(tip, path.Join(projects.Root, projects.Recipes))
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if projects.ValidateRecipe(n) == nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// channelNames lists recipe's channels that have a log at tip, sorted.
func (s *Store) channelNames(tip gitrepo.Hash, recipe string) ([]string, error) {
	names, err := s.dirs(tip, path.Join(projects.Root, projects.Recipes, recipe))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if projects.ValidateChannel(n) == nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// recipeLogs lists every recipe's logs at tip: its releases and channels.
func (s *Store) recipeLogs(tip gitrepo.Hash) ([]projects.Address, error) {
	recipes, err := s.recipes(tip)
	if err != nil {
		return nil, err
	}
	var out []projects.Address
	for _, r := range recipes {
		names, err := s.dirs(tip, path.Join(projects.Root, projects.Recipes, r))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if a := projects.ChannelOf(r, n); a.Validate() == nil {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// Releases lists recipe's releases in the order they were recorded.
func (s *Store) Releases(recipe string) ([]fold.Release, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	return s.releases(tip, recipe)
}

func (s *Store) releases(tip gitrepo.Hash, recipe string) ([]fold.Release, error) {
	if err := projects.ValidateRecipe(recipe); err != nil {
		return nil, err
	}
	events, err := s.events(tip, projects.ReleasesOf(recipe))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("releases of %s: %w", recipe, err)
	}
	return fold.FoldReleases(events), nil
}

// Channel folds the channel's log; ErrNotFound when it has none.
func (s *Store) Channel(ref projects.ChannelRef) (*fold.Channel, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	return s.channel(tip, ref)
}

func (s *Store) channel(tip gitrepo.Hash, ref projects.ChannelRef) (*fold.Channel, error) {
	notYet := fmt.Errorf("channel %s: %w: never promoted, and no rule set", ref, ErrNotFound)
	events, err := s.events(tip, ref.Address())
	if errors.Is(err, ErrNotFound) {
		return nil, notYet
	}
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", ref, err)
	}
	c := fold.FoldChannel(events)
	if c == nil {
		return nil, notYet
	}
	return c, nil
}

// Channels folds every channel of recipe, or of every recipe when recipe
// is "", sorted by recipe and channel.
func (s *Store) Channels(recipe string) ([]*fold.Channel, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	return s.channels(tip, recipe)
}

func (s *Store) channels(tip gitrepo.Hash, recipe string) ([]*fold.Channel, error) {
	recipes := []string{recipe}
	if recipe == "" {
		var err error
		if recipes, err = s.recipes(tip); err != nil {
			return nil, err
		}
	}
	out := []*fold.Channel{}
	for _, r := range recipes {
		names, err := s.channelNames(tip, r)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			c, err := s.channel(tip, projects.ChannelRef{Recipe: r, Channel: n})
			if errors.Is(err, ErrNotFound) {
				continue // every record left out as invalid
			}
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// Releases is recipe's releases at the write's tip.
func (tx *Tx) Releases(recipe string) ([]fold.Release, error) { return tx.s.releases(tx.tip, recipe) }

// Channel is the channel at the write's tip, nil when it has no log yet.
func (tx *Tx) Channel(ref projects.ChannelRef) (*fold.Channel, error) {
	c, err := tx.s.channel(tx.tip, ref)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return c, err
}

// Heads folds every app at the write's tip, evaluated at now.
func (tx *Tx) Heads(now time.Time) ([]*fold.Head, error) {
	apps, err := tx.s.apps(tx.tip)
	if err != nil {
		return nil, err
	}
	out := make([]*fold.Head, 0, len(apps))
	for _, a := range apps {
		h, err := tx.s.head(tx.tip, a)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, h.At(now))
	}
	return out, nil
}

// addRecipe adds ev to a recipe's log, moving meta.yaml to the version
// such logs need (config.RecipesVersion) in the commit of the write's first
// record (commitTx), so that a meta that does not know them refuses to
// write to the log instead of taking them for junk.
func (tx *Tx) addRecipe(a projects.Address, ev *metav1.Event) error {
	if c := tx.Config(); c.Version < c.WithRecipes().Version {
		if err := tx.PutConfig(c.WithRecipes()); err != nil {
			return err
		}
	}
	tx.Add(a, ev)
	return nil
}

// Following lists the heads that follow recipe/channel among heads.
func Following(heads []*fold.Head, ref projects.ChannelRef) []*fold.Head {
	var out []*fold.Head
	for _, h := range heads {
		if f := h.Follows; f != nil && f.Recipe == ref.Recipe && f.Channel == ref.Channel {
			out = append(out, h)
		}
	}
	return out
}

// ReleaseSpec is one release to record.
type ReleaseSpec struct {
	Recipe, Version string
	// Commit is the recipe's commit the version's tag points to, "" when
	// not known.
	Commit string
	Images []fold.Image
	// Notes become the event's message.
	Notes string
}

// AddedReleases is what AddReleases did: the releases recorded, and those
// skipped as recorded already.
type AddedReleases struct {
	*Written
	Skipped []string
}

// AddReleases records releases, one event each, in one write. A version
// the log has already is refused (ErrRecorded), or with skipRecorded left
// out and listed in Skipped; when every one is, nothing is written and the
// error is ErrNoChange. The caller checks the versions are recipe versions
// (abra.ParseVersion).
func (s *Store) AddReleases(ctx context.Context, specs []ReleaseSpec, skipRecorded bool, actor *metav1.Actor, now time.Time, opts AppendOptions) (*AddedReleases, error) {
	var skipped []string
	out, err := s.Write(ctx, actor, now, opts, func(tx *Tx) error {
		skipped = nil
		have := map[string]map[string]bool{}
		for _, sp := range specs {
			if have[sp.Recipe] == nil {
				rels, err := tx.Releases(sp.Recipe)
				if err != nil {
					return err
				}
				have[sp.Recipe] = map[string]bool{}
				for _, r := range rels {
					have[sp.Recipe][r.Version] = true
				}
			}
			if have[sp.Recipe][sp.Version] {
				if skipRecorded {
					skipped = append(skipped, sp.Version)
					continue
				}
				return fmt.Errorf("%w: %s %s", ErrRecorded, sp.Recipe, sp.Version)
			}
			have[sp.Recipe][sp.Version] = true
			ev := &metav1.Event{
				Kind:    metav1.Kind_KIND_RELEASE,
				Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
				Recipe:  sp.Recipe,
				Version: sp.Version,
				Message: sp.Notes,
				Body:    &metav1.Event_Release{Release: &metav1.Release{Commit: sp.Commit}},
			}
			for _, im := range sp.Images {
				ev.GetRelease().Images = append(ev.GetRelease().Images, &metav1.Image{Service: im.Service, Ref: im.Ref})
			}
			if err := tx.addRecipe(projects.ReleasesOf(sp.Recipe), ev); err != nil {
				return err
			}
		}
		if len(tx.adds) == 0 {
			return ErrNoChange
		}
		return nil
	})
	if err != nil {
		return &AddedReleases{Skipped: skipped}, fmt.Errorf("release: %w", err)
	}
	return &AddedReleases{Written: out, Skipped: skipped}, nil
}

// PromoteSpec is a promotion to make.
type PromoteSpec struct {
	Channel projects.ChannelRef
	Version string
	// Expect, when set, is the version the channel must be at ("none":
	// never promoted), as the write finds it after its pull.
	Expect  string
	Message string
	// Force promotes past the channel's rule; the event says so.
	Force bool
}

// Promoted is what Promote did, and what the channel's rule said.
type Promoted struct {
	*Appended
	Admission *fold.Admission
}

// NotAdmittedError is ErrNotAdmitted with the rule's answer.
type NotAdmittedError struct {
	Channel   projects.ChannelRef
	Version   string
	Rule      fold.Rule
	Admission fold.Admission
}

func (e *NotAdmittedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %s %s has not soaked in %s/%s for %s:", ErrNotAdmitted, e.Channel.Recipe, e.Version, e.Channel.Recipe, e.Rule.From, e.Rule.Soak)
	for _, w := range e.Admission.Waiting {
		if w.App == "" {
			fmt.Fprintf(&b, "\n  %s", w.Reason)
		} else {
			fmt.Fprintf(&b, "\n  %s %s", w.App, w.Reason)
		}
	}
	b.WriteString("\n(--force promotes anyway, and the promotion says so)")
	return b.String()
}

// Is lets callers match ErrNotAdmitted.
func (e *NotAdmittedError) Is(target error) bool { return target == ErrNotAdmitted }

// Promote moves a channel to a recorded release, as the log stands after
// the pull: the release must be recorded (ErrNoRelease), the channel at
// spec.Expect when given (ErrUnexpected), and the channel's rule must
// admit the release, judged by the heads of the apps following its from
// channel at now (a *NotAdmittedError), unless spec.Force. A channel
// already at the version, and not forked, is ErrNoChange.
func (s *Store) Promote(ctx context.Context, spec PromoteSpec, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Promoted, error) {
	var admission *fold.Admission
	out, err := s.Write(ctx, actor, now, opts, func(tx *Tx) error {
		admission = nil
		rels, err := tx.Releases(spec.Channel.Recipe)
		if err != nil {
			return err
		}
		if !releaseIn(rels, spec.Version) {
			return fmt.Errorf("%w: %s %s is not recorded (meta release add %s %s, or meta release import %s --from DIR)", ErrNoRelease, spec.Channel.Recipe, spec.Version, spec.Channel.Recipe, spec.Version, spec.Channel.Recipe)
		}
		c, err := tx.Channel(spec.Channel)
		if err != nil {
			return err
		}
		current := ""
		if c != nil {
			current = c.Version
		}
		if spec.Expect != "" && spec.Expect != noneIfEmpty(current) {
			return fmt.Errorf("%w: you expected %s at %s, it is at %s", ErrUnexpected, spec.Channel, spec.Expect, noneIfEmpty(current))
		}
		if current == spec.Version && !c.Forked {
			return fmt.Errorf("%w: %s is at %s already", ErrNoChange, spec.Channel, spec.Version)
		}
		p := &metav1.Promotion{Channel: spec.Channel.Channel, Previous: current, Expected: spec.Expect}
		if c != nil && c.Rule != nil {
			r := c.Rule
			p.Rule = &metav1.ChannelRule{Channel: spec.Channel.Channel, From: r.From, Soak: durationpb.New(r.SoakFor)}
			heads, err := tx.Heads(now)
			if err != nil {
				return err
			}
			a := r.Admit(spec.Channel.Recipe, spec.Version, Following(heads, projects.ChannelRef{Recipe: spec.Channel.Recipe, Channel: r.From}), now)
			admission = &a
			if !a.OK && !spec.Force {
				return &NotAdmittedError{Channel: spec.Channel, Version: spec.Version, Rule: *r, Admission: a}
			}
			p.Admitted, p.Forced = a.Admitted, !a.OK
		}
		return tx.addRecipe(spec.Channel.Address(), &metav1.Event{
			Kind:    metav1.Kind_KIND_PROMOTE,
			Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
			Recipe:  spec.Channel.Recipe,
			Version: spec.Version,
			Message: spec.Message,
			Body:    &metav1.Event_Promotion{Promotion: p},
		})
	})
	if err != nil {
		return &Promoted{Admission: admission}, fmt.Errorf("promote %s: %w", spec.Channel, err)
	}
	return &Promoted{Appended: &Appended{Written: out, Event: out.Events[0], Path: out.Paths[0]}, Admission: admission}, nil
}

func releaseIn(rels []fold.Release, version string) bool {
	for _, r := range rels {
		if r.Version == version {
			return true
		}
	}
	return false
}

func noneIfEmpty(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// SetRule sets the rule of a channel: its promotions need a release that
// ran on every app following from, without drift for soak. An empty from
// drops the rule. The channel's rule as it stands already is ErrNoChange.
func (s *Store) SetRule(ctx context.Context, ref projects.ChannelRef, from string, soak time.Duration, message string, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	out, err := s.Write(ctx, actor, now, opts, func(tx *Tx) error {
		c, err := tx.Channel(ref)
		if err != nil {
			return err
		}
		switch {
		case c != nil && c.Rule != nil && c.Rule.From == from && c.Rule.SoakFor == soak && !c.Forked:
			return fmt.Errorf("%w: %s has that rule already", ErrNoChange, ref)
		case from == "" && (c == nil || c.Rule == nil):
			return fmt.Errorf("%w: %s has no rule", ErrNoChange, ref)
		}
		r := &metav1.ChannelRule{Channel: ref.Channel, From: from}
		if soak != 0 {
			r.Soak = durationpb.New(soak)
		}
		return tx.addRecipe(ref.Address(), &metav1.Event{
			Kind:    metav1.Kind_KIND_CHANNEL_RULE,
			Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
			Recipe:  ref.Recipe,
			Message: message,
			Body:    &metav1.Event_Rule{Rule: r},
		})
	})
	if err != nil {
		return nil, fmt.Errorf("channel rule %s: %w", ref, err)
	}
	return &Appended{Written: out, Event: out.Events[0], Path: out.Paths[0]}, nil
}

// Follow records that the app at domain (a domain or project/env/domain)
// follows a channel. The app must be in the log (ErrNotFound); a recipe the
// log knows for it must be the channel's (ErrRecipe). Following the channel
// it follows already is ErrNoChange.
func (s *Store) Follow(ctx context.Context, domain string, ref projects.ChannelRef, message string, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	return s.follow(ctx, domain, metav1.Kind_KIND_FOLLOW, &ref, message, actor, now, opts)
}

// Unfollow records that the app at domain follows no channel any more;
// ErrNotFollowing when it follows none.
func (s *Store) Unfollow(ctx context.Context, domain, message string, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	return s.follow(ctx, domain, metav1.Kind_KIND_UNFOLLOW, nil, message, actor, now, opts)
}

func (s *Store) follow(ctx context.Context, domain string, kind metav1.Kind, ref *projects.ChannelRef, message string, actor *metav1.Actor, now time.Time, opts AppendOptions) (*Appended, error) {
	verb := record.KindName(kind)
	out, err := s.Write(ctx, actor, now, opts, func(tx *Tx) error {
		a, err := tx.s.locate(tx.tip, domain)
		if err != nil {
			return err
		}
		h, err := tx.Head(a)
		if err != nil {
			return err
		}
		if h == nil {
			return fmt.Errorf("%w for %s", ErrNotFound, domain)
		}
		ev := &metav1.Event{Kind: kind, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Message: message}
		if kind == metav1.Kind_KIND_UNFOLLOW {
			if h.Follows == nil {
				return fmt.Errorf("%w: %s", ErrNotFollowing, domain)
			}
			ev.Recipe = h.Follows.Recipe
			ev.Body = &metav1.Event_Follow{Follow: &metav1.Follow{Channel: h.Follows.Channel}}
		} else {
			if h.Recipe != "" && h.Recipe != ref.Recipe {
				return fmt.Errorf("%w: %s runs recipe %s, and %s is a channel of %s", ErrRecipe, domain, h.Recipe, ref, ref.Recipe)
			}
			if f := h.Follows; f != nil && f.Recipe == ref.Recipe && f.Channel == ref.Channel {
				return fmt.Errorf("%w: %s follows %s already", ErrNoChange, domain, ref)
			}
			ev.Recipe = ref.Recipe
			ev.Body = &metav1.Event_Follow{Follow: &metav1.Follow{Channel: ref.Channel}}
		}
		tx.Add(a, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb, domain, err)
	}
	return &Appended{Written: out, Event: out.Events[0], Path: out.Paths[0]}, nil
}
