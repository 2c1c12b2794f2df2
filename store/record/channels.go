package record

import (
	"fmt"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
)

// validateChannels checks the events of releases, channels and follows:
// each names its recipe (and a release or promotion its version) the way
// the log it lies in does, so that a record copied into another log, or
// hand-made to say one thing in its path and another inside, is refused.
func validateChannels(ev *metav1.Event) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s event %s: %s", ErrInvalid, KindName(ev.GetKind()), ev.GetId(), fmt.Sprintf(format, args...))
	}
	if ev.GetOutcome() != metav1.Outcome_OUTCOME_SUCCEEDED {
		return bad("only a succeeded one can be recorded, not %s", OutcomeName(ev.GetOutcome()))
	}
	a := address(ev)
	if err := projects.ValidateRecipe(ev.GetRecipe()); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if a.IsRecipe() && ev.GetRecipe() != a.Recipe() {
		return bad("its recipe %q is not the log's, %q", ev.GetRecipe(), a.Recipe())
	}
	if ev.GetChaosVersion() != "" {
		return bad("a chaos version is no release")
	}
	switch ev.GetKind() {
	case metav1.Kind_KIND_RELEASE:
		if ev.GetVersion() == "" {
			return bad("no version")
		}
		if c := ev.GetRelease().GetCommit(); c != "" && !isObjectID(c) {
			return bad("commit %q is not a full commit id (40 or 64 hex digits)", c)
		}
		for _, im := range ev.GetRelease().GetImages() {
			if im.GetService() == "" || im.GetRef() == "" {
				return bad("an image needs a service and a reference")
			}
		}
	case metav1.Kind_KIND_PROMOTE:
		p := ev.GetPromotion()
		if ev.GetVersion() == "" {
			return bad("no version")
		}
		if p.GetChannel() != a.Channel() {
			return bad("it promotes channel %q, but lies in the log of %q", p.GetChannel(), a.Channel())
		}
		if r := p.GetRule(); r != nil {
			if err := validateRule(r, p.GetChannel()); err != nil {
				return bad("its rule: %v", err)
			}
		}
		for _, app := range p.GetAdmitted() {
			ref, err := projects.ParseRef(app)
			if err != nil || ref.Project == "" || ref.Env == "" {
				return bad("admitted app %q is not project/env/domain", app)
			}
		}
	case metav1.Kind_KIND_CHANNEL_RULE:
		if r := ev.GetRule(); r.GetChannel() != a.Channel() {
			return bad("it is a rule of channel %q, but lies in the log of %q", r.GetChannel(), a.Channel())
		} else if err := validateRule(r, a.Channel()); err != nil {
			return bad("%v", err)
		}
	case metav1.Kind_KIND_FOLLOW, metav1.Kind_KIND_UNFOLLOW:
		if ev.GetVersion() != "" {
			return bad("a follow names a channel, not a version")
		}
		if err := projects.ValidateChannel(ev.GetFollow().GetChannel()); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return nil
}

func validateRule(r *metav1.ChannelRule, channel string) error {
	if r.GetFrom() != "" {
		if err := projects.ValidateChannel(r.GetFrom()); err != nil {
			return err
		}
		if r.GetFrom() == channel {
			return fmt.Errorf("channel %s cannot soak in itself", channel)
		}
	}
	if s := r.GetSoak(); s != nil && (!s.IsValid() || s.AsDuration() < 0) {
		return fmt.Errorf("soak %v is not a duration of zero or more", s)
	}
	if r.GetFrom() == "" && r.GetSoak().AsDuration() != 0 {
		return fmt.Errorf("a soak needs a channel to soak in (from)")
	}
	return nil
}

func isObjectID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
