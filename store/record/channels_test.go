package record

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// channelEvent is a valid event of kind k in the log it belongs to.
func channelEvent(k metav1.Kind) *metav1.Event {
	ev := sample()
	ev.Parents, ev.Command, ev.BatchId, ev.Message = nil, nil, "", ""
	ev.Kind, ev.Recipe, ev.Version = k, "nextcloud", "5.1.0+29.0.4"
	switch k {
	case metav1.Kind_KIND_RELEASE:
		ev.Address = &metav1.Address{Project: "_recipes", Env: "nextcloud", App: "_releases"}
		ev.Body = &metav1.Event_Release{Release: &metav1.Release{Commit: strings.Repeat("ab", 20), Images: []*metav1.Image{{Service: "app", Ref: "nextcloud:29.0.4"}}}}
	case metav1.Kind_KIND_PROMOTE:
		ev.Address = &metav1.Address{Project: "_recipes", Env: "nextcloud", App: "stable"}
		ev.Body = &metav1.Event_Promotion{Promotion: &metav1.Promotion{Channel: "stable", Previous: "5.0.0+29.0.0",
			Rule: &metav1.ChannelRule{Channel: "stable", From: "staging", Soak: durationpb.New(time.Hour)}, Admitted: []string{"coop/staging/cloud.example.org"}}}
	case metav1.Kind_KIND_CHANNEL_RULE:
		ev.Version = ""
		ev.Address = &metav1.Address{Project: "_recipes", Env: "nextcloud", App: "stable"}
		ev.Body = &metav1.Event_Rule{Rule: &metav1.ChannelRule{Channel: "stable", From: "staging", Soak: durationpb.New(24 * time.Hour)}}
	case metav1.Kind_KIND_FOLLOW, metav1.Kind_KIND_UNFOLLOW:
		ev.Version = ""
		ev.Body = &metav1.Event_Follow{Follow: &metav1.Follow{Channel: "stable"}}
	}
	return ev
}

func TestChannelEventsValidate(t *testing.T) {
	for _, k := range []metav1.Kind{metav1.Kind_KIND_RELEASE, metav1.Kind_KIND_PROMOTE, metav1.Kind_KIND_CHANNEL_RULE, metav1.Kind_KIND_FOLLOW, metav1.Kind_KIND_UNFOLLOW} {
		if err := Validate(channelEvent(k)); err != nil {
			t.Errorf("%s: %v", KindName(k), err)
		}
		if Appendable(k) {
			t.Errorf("%s: meta append may write it; only its own command may", KindName(k))
		}
	}
}

// What a record of a recipe's log cannot say: each case is a valid event
// with one thing wrong, the kind of hand-made or copied record integrity
// must quarantine.
func TestChannelEventsRefused(t *testing.T) {
	rel, prom, rule, follow := metav1.Kind_KIND_RELEASE, metav1.Kind_KIND_PROMOTE, metav1.Kind_KIND_CHANNEL_RULE, metav1.Kind_KIND_FOLLOW
	for _, tc := range []struct {
		name   string
		kind   metav1.Kind
		change func(*metav1.Event)
		want   string
	}{
		{"release in an app's log", rel, func(ev *metav1.Event) {
			ev.Address = &metav1.Address{Project: "coop", Env: "prod", App: "cloud.example.org"}
		}, "lies in a recipe's releases log"},
		{"release in a channel's log", rel, func(ev *metav1.Event) { ev.Address.App = "stable" }, "lies in a recipe's releases log"},
		{"promotion in the releases log", prom, func(ev *metav1.Event) { ev.Address.App = "_releases" }, "lies in a channel's log"},
		{"deploy in a channel's log", prom, func(ev *metav1.Event) { ev.Kind, ev.Body = metav1.Kind_KIND_DEPLOY, nil }, "lies in an app's log"},
		{"follow in a channel's log", follow, func(ev *metav1.Event) {
			ev.Address = &metav1.Address{Project: "_recipes", Env: "nextcloud", App: "stable"}
		}, "lies in an app's log"},
		{"release of another recipe", rel, func(ev *metav1.Event) { ev.Recipe = "matrix-synapse" }, "not the log's"},
		{"release without a version", rel, func(ev *metav1.Event) { ev.Version = "" }, "no version"},
		{"release of a chaos version", rel, func(ev *metav1.Event) { ev.ChaosVersion = "eb96de94+U" }, "chaos"},
		{"release with a short commit", rel, func(ev *metav1.Event) { ev.GetRelease().Commit = "abc123" }, "full commit id"},
		{"release with an empty image", rel, func(ev *metav1.Event) { ev.GetRelease().Images[0].Ref = "" }, "image needs"},
		{"a failed release", rel, func(ev *metav1.Event) { ev.Outcome = metav1.Outcome_OUTCOME_FAILED }, "only a succeeded"},
		{"promotion of another channel", prom, func(ev *metav1.Event) { ev.GetPromotion().Channel = "beta" }, "lies in the log of"},
		{"promotion without a version", prom, func(ev *metav1.Event) { ev.Version = "" }, "no version"},
		{"promotion without a body", prom, func(ev *metav1.Event) { ev.Body = nil }, ""},
		{"promotion admitted by a bare domain", prom, func(ev *metav1.Event) { ev.GetPromotion().Admitted = []string{"cloud.example.org"} }, "not project/env/domain"},
		{"rule soaking in itself", rule, func(ev *metav1.Event) { ev.GetRule().From = "stable" }, "soak in itself"},
		{"rule with a negative soak", rule, func(ev *metav1.Event) { ev.GetRule().Soak = durationpb.New(-time.Second) }, "zero or more"},
		{"soak without a from", rule, func(ev *metav1.Event) { ev.GetRule().From = "" }, "needs a channel"},
		{"rule of another channel", rule, func(ev *metav1.Event) { ev.GetRule().Channel = "beta" }, "lies in the log of"},
		{"follow without a recipe", follow, func(ev *metav1.Event) { ev.Recipe = "" }, "recipe"},
		{"follow of a bad channel", follow, func(ev *metav1.Event) { ev.GetFollow().Channel = "Stable" }, "channel"},
		{"follow naming a version", follow, func(ev *metav1.Event) { ev.Version = "1.0.0" }, "not a version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := channelEvent(tc.kind)
			tc.change(ev)
			err := Validate(ev)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

func TestChannelEventsView(t *testing.T) {
	v := ViewOf(channelEvent(metav1.Kind_KIND_PROMOTE))
	if v.Channel != "stable" || v.Promotion == nil || v.Promotion.Rule.Soak != "1h0m0s" || v.Promotion.Rule.SoakSeconds != 3600 || v.Promotion.Admitted[0] != "coop/staging/cloud.example.org" {
		t.Fatalf("view = %+v, %+v", v, v.Promotion)
	}
	var b strings.Builder
	if err := WriteText(&b, channelEvent(metav1.Kind_KIND_PROMOTE)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"recipe log:    nextcloud/stable\n", "channel:       stable\n", "rule:          from staging, soak 1h0m0s\n", "previous:      5.0.0+29.0.0\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "app:") {
		t.Errorf("a recipe log's event shows an app:\n%s", b.String())
	}
}
