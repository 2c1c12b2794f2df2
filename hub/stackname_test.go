package hub

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

// renamed is st as the stack name, labels included, says: what abra
// deploys under an env file's STACK_NAME.
func renamed(st *swarm.Stack, name string) *swarm.Stack {
	old := st.Name
	out := *st
	out.Name = name
	out.Services = nil
	for _, svc := range st.Services {
		svc.Name = name + strings.TrimPrefix(svc.Name, old)
		labels := map[string]string{}
		for k, v := range svc.Labels {
			k = strings.Replace(k, "coop-cloud."+old+".", "coop-cloud."+name+".", 1)
			if k == swarm.NamespaceLabel {
				v = name
			}
			labels[k] = v
		}
		svc.Labels = labels
		out.Services = append(out.Services, svc)
	}
	return &out
}

// An app deployed under its env file's STACK_NAME is looked for there: a
// deploy meta exec recorded says its stack (Event.stack), even one pending
// before anyone saw Swarm; the hub settles it, and does not take the
// domain's stack being absent for the app being gone.
func TestObserverFindsTheStackADeploySaid(t *testing.T) {
	s := newLog(t)
	out, err := s.Append(context.Background(), &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_PENDING, Version: "1.0.0",
		Stack: "custom_stack", Address: &metav1.Address{App: "a.example.com"}}, alice, time.Now(), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := renamed(appStack(t, "a.example.com", "1.0.0"), "custom_stack")
	fake := newFakeSwarm("ssh://root@s1.example.org")
	fake.set(st)
	startObserver(t, s, map[string]*fakeSwarm{"s1": fake}, engine("s1", "prod"))
	waitFor(t, "the settling observation", func() bool { return len(observations(t, s, "a.example.com")) == 1 })
	o := observations(t, s, "a.example.com")[0]
	if o.GetSettles() != out.Event.GetId() || o.GetMissing() || o.GetService() != "custom_stack_app" {
		t.Fatalf("recorded %v; want custom_stack seen, settling %s", o, out.Event.GetId())
	}
	h, err := s.Head("a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if h.State != "deployed" || h.Stack != "custom_stack" || h.Drift != "" {
		t.Fatalf("head %s, stack %q, drift %q (%s)", h.State, h.Stack, h.Drift, h.DriftDetail)
	}
}
