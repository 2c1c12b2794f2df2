package fold

import (
	"sort"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Version changes whenever the fold's rules change, so that memoised heads
// (store's cache) folded by older rules are not reused.
const Version = 9

// States an app can be in, as Head.State says it.
const (
	// StateUnknown: no event so far says whether the app exists or runs.
	StateUnknown = "unknown"
	// StateNew: created (abra app new) and not deployed yet.
	StateNew = "new"
	// StateDeployed: the last deploy, upgrade or rollback succeeded.
	StateDeployed = "deployed"
	// StateDeployFailed: the last deploy, upgrade or rollback failed; Version
	// is still the one from the last successful deploy.
	StateDeployFailed = "deploy-failed"
	// StateRolledBack: Swarm rolled the last deploy's update back; Version
	// is still the one from the last successful deploy, which Swarm runs.
	StateRolledBack = "rolled-back"
	// StatePaused: Swarm paused the last deploy's update; Version is still
	// the last successful deploy's, and the new one runs on some tasks at
	// most.
	StatePaused = "paused"
	// StatePending: the last deploy was recorded before anyone saw what
	// Swarm did with it (Pending); Version is still the last successful
	// deploy's until an observation settles it.
	StatePending = "pending"
	// StateUndeployed: undeployed after running.
	StateUndeployed = "undeployed"
	// StateRemoved: removed from its server.
	StateRemoved = "removed"
	// StateMoved: moved to a server of another env; its log goes on there.
	StateMoved = "moved"
)

// Drift reasons, as Head.Drift says them: why what Swarm runs is not what
// the log says should run.
const (
	// DriftSwarmRollback: Swarm rolled the last deploy back (an update
	// state rollback_*, or the spec back at the previous version's labels).
	DriftSwarmRollback = "swarm-rollback"
	// DriftUpdating: Swarm is still rolling the update out.
	DriftUpdating = "updating"
	// DriftUpdatePaused: Swarm paused the update, usually on a failed task.
	DriftUpdatePaused = "update-paused"
	// DriftUnrecorded: a version runs that no deploy in the log put there,
	// such as a deploy by hand.
	DriftUnrecorded = "unrecorded-version"
	// DriftNotDeployed: the service runs although the log says the app is
	// undeployed or removed.
	DriftNotDeployed = "running-while-undeployed"
	// DriftDown: nothing of the app runs (no task of any service, or the
	// stack is gone) while the log says it is deployed.
	DriftDown = "down"
	// DriftDegraded: some service runs fewer tasks than Swarm wants, such
	// as one that keeps crashing.
	DriftDegraded = "degraded"
)

// Head is an app's state as its log says. Its JSON keys are part of meta's
// interface (`meta head --json`): add keys, never rename or remove them.
type Head struct {
	Domain  string `json:"domain"`
	Project string `json:"project"`
	Env     string `json:"env"`
	// State is one of the State constants.
	State string `json:"state"`
	// Version is the version running as far as the log knows: the last
	// successful deploy's. A failed deploy does not change it.
	Version      string `json:"version"`
	Recipe       string `json:"recipe"`
	ChaosVersion string `json:"chaos_version"`
	// Since is when Version was deployed; zero if it never was.
	Since time.Time `json:"since"`
	// DeployedBy is who deployed Version.
	DeployedBy string `json:"deployed_by"`

	// EventID, Kind, Outcome, Operator and Time describe the last event.
	EventID       string    `json:"event_id"`
	Kind          string    `json:"kind"`
	Outcome       string    `json:"outcome"`
	Operator      string    `json:"operator"`
	OperatorEmail string    `json:"operator_email"`
	Time          time.Time `json:"time"`

	// Deployed is the event that put Version into service.
	Deployed *Ref `json:"deployed"`
	// LastSuccess is the last successful deploy, set when a later one
	// failed, was rolled back or paused by Swarm, or is pending.
	LastSuccess *Ref `json:"last_success"`
	// LastFailure is the deploy behind StateDeployFailed, StateRolledBack
	// or StatePaused; its Detail says what Swarm said.
	LastFailure *Ref `json:"last_failure"`
	// Pending is the deploy behind StatePending, waiting for an
	// observation to say what Swarm did with it.
	Pending *Ref `json:"pending"`
	// Secrets present, by name, with the version last generated or inserted.
	Secrets []Secret `json:"secrets"`
	// EnvDigest is the digest of the app's sealed env file as last written
	// (empty when meta holds none); EnvChanged is the env event that wrote
	// it. EnvChangedSinceDeploy says the file differs from the one Deployed
	// ran with, so the running app does not have it yet.
	EnvDigest             string `json:"env_digest"`
	EnvChanged            *Ref   `json:"env_changed"`
	EnvChangedSinceDeploy bool   `json:"env_changed_since_deploy"`

	// Previous is the successful deploy before Deployed: the version a
	// Swarm rollback returns to.
	Previous *Ref `json:"previous"`
	// Stack is the Docker stack the app runs as, as the last deploy that
	// said (Event.stack) or observation saw it; "" when none did.
	Stack string `json:"stack"`
	// MovedTo names the server and env the app moved to (StateMoved).
	MovedTo string `json:"moved_to"`

	// Observed is the last observation of what Swarm runs; ObservedVersion
	// and ObservedAt repeat its version (the chaos version under --chaos)
	// and time. Drift is empty while what runs is what the log says, else
	// one of the Drift reasons; DriftDetail says it in a sentence. An
	// observation older than the last deploy says nothing about drift.
	Observed        *Observation `json:"observed"`
	ObservedVersion string       `json:"observed_version"`
	ObservedAt      *time.Time   `json:"observed_at"`
	Drift           string       `json:"drift"`
	DriftDetail     string       `json:"drift_detail"`

	// Follows is the channel the app follows (meta follow), nil for none.
	Follows *Follow `json:"follows"`
	// SteadySince is since when the app has run Version as the log says,
	// deployed and without drift: the time of the deploy, or of the
	// observation that saw the drift end; zero while it is not so. A
	// channel's soak counts from it.
	SteadySince time.Time `json:"steady_since"`

	// Lock is the lease on the app, or nil; a lease past Lock.Expires is
	// over even though it stays here until the next lock or unlock.
	Lock *Lock `json:"lock"`

	// Forked says the log has more than one head: operators appended without
	// seeing each other's events. Heads names them all; the state above is
	// still the same on every machine.
	Forked bool  `json:"forked"`
	Heads  []Ref `json:"heads"`

	// Events counts the app's events; UnknownEvents those of kinds this meta
	// does not know (written by a newer one), which change no state.
	Events        int `json:"events"`
	UnknownEvents int `json:"unknown_events"`
}

// Ref names one event and what it said.
type Ref struct {
	EventID      string    `json:"event_id"`
	Kind         string    `json:"kind"`
	Outcome      string    `json:"outcome"`
	Version      string    `json:"version"`
	ChaosVersion string    `json:"chaos_version"`
	Operator     string    `json:"operator"`
	Time         time.Time `json:"time"`
	// EnvDigest is the digest of the env file in force at that event;
	// LocalEnv says it ran with a local env file instead, one the log does
	// not know.
	EnvDigest string `json:"env_digest"`
	LocalEnv  bool   `json:"local_env"`
	// Recipe is the event's recipe.
	Recipe string `json:"recipe"`
	// Detail says, for a deploy Swarm rolled back or paused, what Swarm
	// said (its update message, else the last task error).
	Detail string `json:"detail"`
	// SettledBy is the observation that settled a pending deploy;
	// Outcome is then the outcome it settled it with.
	SettledBy string `json:"settled_by"`
	// SignedBy and Signature say who signed the commit that wrote the
	// event and whether it verified (integrity.Verified, ...). The fold
	// leaves them empty: they are history's, not the records', and the
	// store fills them in (store.Report).
	SignedBy  string `json:"signed_by"`
	Signature string `json:"signature"`
}

// envChangedSince says the env file with digest env (the log's, "" for
// none) is not the one the deploy ran with. After a deploy with a local env
// the log cannot tell, and does not claim it.
func envChangedSince(env string, deploy Ref) bool {
	return env != "" && !deploy.LocalEnv && deploy.EnvDigest != env
}

// Running is the version the log says runs: the chaos version after a
// --chaos deploy, else the version; "" for none.
func (h *Head) Running() string {
	if h.ChaosVersion != "" {
		return h.ChaosVersion
	}
	return h.Version
}

// Secret is a secret's name and version; never its value.
type Secret struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// RefOf describes ev.
func RefOf(ev *metav1.Event) Ref {
	return Ref{
		EventID:      ev.GetId(),
		Kind:         record.KindName(ev.GetKind()),
		Outcome:      record.OutcomeName(ev.GetOutcome()),
		Version:      ev.GetVersion(),
		ChaosVersion: ev.GetChaosVersion(),
		Operator:     ev.GetActor().GetName(),
		Time:         ev.GetTime().AsTime().UTC(),
		EnvDigest:    ev.GetEnvDigest(),
		LocalEnv:     ev.GetLocalEnv(),
		Recipe:       ev.GetRecipe(),
		Detail:       swarmSaid(ev.GetSwarm()),
	}
}

// swarmSaid is what an observation says went wrong: Swarm's update message
// and the app service's (else any service's) last task error, which says
// why when the message does not ("rollback completed").
func swarmSaid(o *metav1.Observation) string {
	var said []string
	if m := o.GetUpdateMessage(); m != "" {
		said = append(said, m)
	}
	lastError := ""
	for _, s := range o.GetServices() {
		if s.GetName() == o.GetService() && s.GetLastError() != "" {
			lastError = "last task error: " + s.GetLastError()
			break
		}
		if s.GetLastError() != "" && lastError == "" {
			lastError = "last task error of " + s.GetName() + ": " + s.GetLastError()
		}
	}
	if lastError != "" {
		said = append(said, lastError)
	}
	return strings.Join(said, "; ")
}

// Fold computes the head of one app from all its events, given in any order.
// It returns nil for no events.
func Fold(events []*metav1.Event) *Head {
	if len(events) == 0 {
		return nil
	}
	ordered := Order(events)
	first := ordered[0].GetAddress()
	h := &Head{Domain: first.GetApp(), Project: first.GetProject(), Env: first.GetEnv(), State: StateUnknown, Secrets: []Secret{}}
	for _, ev := range ordered {
		h.apply(ev)
	}
	h.Events = len(ordered)
	h.Heads = heads(ordered)
	h.Forked = len(h.Heads) > 1
	return h
}

// Next is the head after appending ev to the log whose head is h, when ev
// names every one of h's heads as a parent (as a local append does): every
// other event is then an ancestor of ev, so ev comes last in fold order and
// the fold need not be redone. It returns nil when ev is not such an event;
// the caller folds the whole log instead.
func Next(h *Head, ev *metav1.Event) *Head {
	if h == nil {
		if len(ev.GetParents()) > 0 {
			return nil
		}
		return Fold([]*metav1.Event{ev})
	}
	want := map[string]bool{}
	for _, id := range h.HeadIDs() {
		want[id] = true
	}
	got := map[string]bool{}
	for _, p := range ev.GetParents() {
		got[p] = true
	}
	if len(got) != len(want) {
		return nil
	}
	for id := range want {
		if !got[id] {
			return nil
		}
	}
	next := *h
	next.Secrets = append([]Secret{}, h.Secrets...)
	if h.ObservedAt != nil {
		at := *h.ObservedAt
		next.ObservedAt = &at
	}
	next.apply(ev)
	next.Events++
	next.Heads = []Ref{RefOf(ev)}
	next.Forked = false
	return &next
}

// Follow is the channel an app follows, and who said so when.
type Follow struct {
	Recipe  string `json:"recipe"`
	Channel string `json:"channel"`
	Ref
}

// apply folds one event into h, then says whether the app is steady.
func (h *Head) apply(ev *metav1.Event) {
	h.applyEvent(ev)
	h.steady(ev)
}

// steady keeps SteadySince: a successful deploy starts it anew, drift or
// any state but deployed ends it, and the first event that finds the app
// deployed without drift again (the observation that saw it so) starts
// it.
func (h *Head) steady(ev *metav1.Event) {
	switch {
	case h.State != StateDeployed || h.Drift != "":
		h.SteadySince = time.Time{}
	case record.IsDeployKind(ev.GetKind()) && ev.GetOutcome() == metav1.Outcome_OUTCOME_SUCCEEDED, h.SteadySince.IsZero():
		h.SteadySince = ev.GetTime().AsTime().UTC()
	}
}

// applyEvent folds one event into h. Only succeeded events change state,
// except that a deploy that failed, that Swarm rolled back or paused, or
// whose outcome is pending marks the app as such without touching the
// version.
func (h *Head) applyEvent(ev *metav1.Event) {
	last := RefOf(ev)
	h.EventID, h.Kind, h.Outcome, h.Time = last.EventID, last.Kind, last.Outcome, last.Time
	h.Operator, h.OperatorEmail = ev.GetActor().GetName(), ev.GetActor().GetEmail()

	kind := ev.GetKind()
	if !record.KnownKind(kind) {
		h.UnknownEvents++
		return
	}
	if kind == metav1.Kind_KIND_LOCK || kind == metav1.Kind_KIND_UNLOCK {
		h.applyLock(ev, last.Time)
		return
	}
	if record.IsDeployKind(kind) {
		if ev.GetStack() != "" {
			h.Stack = ev.GetStack()
		}
		if t := ev.GetRollback().GetTargetVersion(); t != "" {
			last.Version = t // a rollback may name only its target
		}
		h.deploy(ev.GetOutcome(), last)
		if sw := ev.GetSwarm(); sw != nil {
			h.observe(sw, last)
		}
		return
	}
	switch ev.GetOutcome() {
	case metav1.Outcome_OUTCOME_SUCCEEDED:
	default:
		return // failed, or an outcome from a newer meta: claim nothing
	}
	switch kind {
	case metav1.Kind_KIND_FOLLOW:
		// A follow names the recipe of the channel, which meta follow
		// checked against the app's; it does not tell the app's recipe.
		h.Follows = &Follow{Recipe: ev.GetRecipe(), Channel: ev.GetFollow().GetChannel(), Ref: last}
		return
	case metav1.Kind_KIND_UNFOLLOW:
		// Only the channel it names: an unfollow made without seeing a
		// follow of another channel leaves that one standing.
		if f := h.Follows; f != nil && f.Recipe == ev.GetRecipe() && f.Channel == ev.GetFollow().GetChannel() {
			h.Follows = nil
		}
		return
	}
	if ev.GetRecipe() != "" {
		h.Recipe = ev.GetRecipe()
	}
	switch {
	case kind == metav1.Kind_KIND_OBSERVE:
		h.settle(ev.GetObservation(), last)
		h.observe(ev.GetObservation(), last)
	case kind == metav1.Kind_KIND_MOVE:
		h.move(ev)
	case kind == metav1.Kind_KIND_NEW:
		// Recreating a removed app starts it over; "new" never hides a
		// deploy that the log already holds.
		if h.State == StateUnknown || h.State == StateRemoved {
			h.setState(StateNew)
			h.Version, h.ChaosVersion, h.Since, h.DeployedBy, h.Deployed = "", "", time.Time{}, "", nil
		}
	case kind == metav1.Kind_KIND_UNDEPLOY:
		h.setState(StateUndeployed)
		h.Drift, h.DriftDetail = "", ""
	case kind == metav1.Kind_KIND_REMOVE:
		h.setState(StateRemoved)
		h.Secrets = []Secret{}
		h.Drift, h.DriftDetail = "", ""
	case kind == metav1.Kind_KIND_SECRET_GENERATE, kind == metav1.Kind_KIND_SECRET_INSERT:
		h.setSecret(ev.GetSecret().GetName(), ev.GetSecret().GetVersion())
	case kind == metav1.Kind_KIND_SECRET_REMOVE:
		h.removeSecret(ev.GetSecret().GetName())
	case kind == metav1.Kind_KIND_ENV:
		h.EnvDigest, h.EnvChanged = ev.GetEnvDigest(), &last
		h.EnvChangedSinceDeploy = h.Deployed != nil && envChangedSince(h.EnvDigest, *h.Deployed)
	}
}

// deployStates is what state each outcome of a deploy, upgrade or
// rollback leaves the app in.
var deployStates = map[metav1.Outcome]string{
	metav1.Outcome_OUTCOME_SUCCEEDED:   StateDeployed,
	metav1.Outcome_OUTCOME_FAILED:      StateDeployFailed,
	metav1.Outcome_OUTCOME_ABORTED:     StateDeployFailed,
	metav1.Outcome_OUTCOME_ROLLED_BACK: StateRolledBack,
	metav1.Outcome_OUTCOME_PAUSED:      StatePaused,
	metav1.Outcome_OUTCOME_PENDING:     StatePending,
}

// deploy folds a deploy, upgrade or rollback that ended with outcome (the
// event's, or the one an observation settled it with): the one rule of
// what each outcome does to the app.
func (h *Head) deploy(outcome metav1.Outcome, d Ref) {
	state, known := deployStates[outcome]
	if !known {
		return // an outcome from a newer meta: claim nothing
	}
	if state != StateDeployFailed {
		// Swarm took the new spec: what it was seen running before says
		// nothing about it, only a later observation can. (When abra
		// failed, what Swarm was seen running may still stand.)
		h.Drift, h.DriftDetail = "", ""
	}
	if state != StateDeployed {
		h.setFailed(state, d)
		return
	}
	if d.Recipe != "" {
		h.Recipe = d.Recipe
	}
	h.setState(StateDeployed)
	if h.Deployed != nil && h.Deployed.Running() != d.Running() {
		h.Previous = h.Deployed
	}
	h.Version, h.ChaosVersion = d.Version, d.ChaosVersion
	h.Since, h.DeployedBy = d.Time, d.Operator
	h.Deployed = &d
	h.EnvChangedSinceDeploy = envChangedSince(h.EnvDigest, d)
}

// setFailed moves to a state where the last deploy did not (or not yet)
// put its version into service: the app keeps the version before.
func (h *Head) setFailed(state string, d Ref) {
	h.setState(state)
	if state == StatePending {
		h.Pending = &d
	} else {
		h.LastFailure = &d
	}
	h.LastSuccess = h.Deployed
}

// settle folds what an observation decided about the pending deploy, if it
// names the one pending now: a deploy superseded by a later one stays as
// it was recorded.
func (h *Head) settle(o *metav1.Observation, by Ref) {
	if o.GetSettles() == "" || h.Pending == nil || h.Pending.EventID != o.GetSettles() {
		return
	}
	d := *h.Pending
	d.Outcome, d.SettledBy = record.OutcomeName(o.GetSettledOutcome()), by.EventID
	if d.Detail == "" {
		d.Detail = swarmSaid(o)
	}
	h.deploy(o.GetSettledOutcome(), d)
}

// move marks the app as gone from this env when the event is the
// departure half of a move between envs; the arrival half starts the app
// over in its new env, undeployed, as abra leaves it.
func (h *Head) move(ev *metav1.Event) {
	m := ev.GetMove()
	if m.GetFromEnv() == "" || m.GetFromEnv() == m.GetToEnv() {
		h.setState(StateUndeployed)
		return
	}
	switch ev.GetAddress().GetEnv() {
	case m.GetFromEnv():
		h.setState(StateMoved)
		h.MovedTo = m.GetToServer() + " (" + m.GetToEnv() + ")"
	case m.GetToEnv():
		h.setState(StateUndeployed)
		h.MovedTo = ""
		if v := ev.GetVersion(); v != "" {
			h.Version = v
		}
	}
}

// setState moves to state s, forgetting the failed or pending deploy of
// the state before; setFailed then names the new one.
func (h *Head) setState(s string) {
	h.LastFailure, h.LastSuccess, h.Pending = nil, nil, nil
	h.State = s
}

// setSecret records a secret's version, keeping Secrets sorted by name.
func (h *Head) setSecret(name, version string) {
	i := sort.Search(len(h.Secrets), func(i int) bool { return h.Secrets[i].Name >= name })
	if i < len(h.Secrets) && h.Secrets[i].Name == name {
		h.Secrets[i].Version = version
		return
	}
	h.Secrets = append(h.Secrets, Secret{})
	copy(h.Secrets[i+1:], h.Secrets[i:])
	h.Secrets[i] = Secret{Name: name, Version: version}
}

func (h *Head) removeSecret(name string) {
	for i, s := range h.Secrets {
		if s.Name == name {
			h.Secrets = append(h.Secrets[:i], h.Secrets[i+1:]...)
			return
		}
	}
}

// heads are the events no other event names as a parent, in fold order.
func heads(ordered []*metav1.Event) []Ref {
	named := make(map[string]bool, len(ordered))
	for _, ev := range ordered {
		for _, p := range ev.GetParents() {
			if p != ev.GetId() {
				named[p] = true
			}
		}
	}
	var out []Ref
	for _, ev := range ordered {
		if !named[ev.GetId()] {
			out = append(out, RefOf(ev))
		}
	}
	return out
}

// HeadIDs are the ids of h's heads: the parents of the app's next event.
func (h *Head) HeadIDs() []string {
	if h == nil {
		return nil
	}
	ids := make([]string, len(h.Heads))
	for i, r := range h.Heads {
		ids[i] = r.EventID
	}
	return ids
}
