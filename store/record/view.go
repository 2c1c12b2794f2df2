package record

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// View is an event as `meta log --json` and `meta cat --json` show it. Its
// JSON keys are part of meta's interface: add keys, never rename or remove
// them.
type View struct {
	ID            string        `json:"id"`
	Time          time.Time     `json:"time"`
	Kind          string        `json:"kind"`
	Outcome       string        `json:"outcome"`
	Project       string        `json:"project"`
	Env           string        `json:"env"`
	Domain        string        `json:"domain"`
	Operator      string        `json:"operator"`
	OperatorEmail string        `json:"operator_email"`
	Host          string        `json:"host"`
	Parents       []string      `json:"parents"`
	Recipe        string        `json:"recipe"`
	Version       string        `json:"version"`
	ChaosVersion  string        `json:"chaos_version"`
	Command       []string      `json:"command"`
	Message       string        `json:"message"`
	BatchID       string        `json:"batch_id"`
	EnvDigest     string        `json:"env_digest"`
	LocalEnv      bool          `json:"local_env"`
	Rollback      *RollbackView `json:"rollback,omitempty"`
	Move          *MoveView     `json:"move,omitempty"`
	Secret        *SecretView   `json:"secret,omitempty"`
	Volume        *VolumeView   `json:"volume,omitempty"`
	Restore       *RestoreView  `json:"restore,omitempty"`
	EnvChange     *EnvView      `json:"env_change,omitempty"`
	Observation   *ObservedView `json:"observation,omitempty"`
	// Swarm is what Swarm was seen doing when meta exec stopped
	// following the update a deploy started (Event.swarm).
	Swarm *ObservedView `json:"swarm,omitempty"`
	// Stack is the Docker stack abra deployed the app as (Event.stack).
	Stack  string      `json:"stack"`
	Lock   *LockView   `json:"lock,omitempty"`
	Unlock *UnlockView `json:"unlock,omitempty"`
	Purge  *PurgeView  `json:"purge,omitempty"`
	// Channel is the channel a promotion or rule concerns, or an app
	// follows or left; Release, Promotion and Rule are those bodies.
	// Events of a recipe's log have project "_recipes", env the recipe
	// and domain the log ("_releases" or the channel).
	Channel      string         `json:"channel"`
	Release      *ReleaseView   `json:"release,omitempty"`
	Promotion    *PromotionView `json:"promotion,omitempty"`
	Rule         *RuleView      `json:"rule,omitempty"`
	BatchSummary string         `json:"batch_summary"`
	BrokeLock    string         `json:"broke_lock"`
	Format       uint32         `json:"format"`
	// SignedBy and Signature say who signed the commit that wrote the
	// event and whether it verified; the store fills them in
	// (store.Views), ViewOf leaves them empty.
	SignedBy  string `json:"signed_by"`
	Signature string `json:"signature"`
}

// LocalEnvNote is how meta says a deploy ran with a local env (see
// Event.local_env).
const LocalEnvNote = "local env"

// ObservedView is the body of an observe event: what Swarm runs.
type ObservedView struct {
	Service              string `json:"service"`
	Version              string `json:"version"`
	Recipe               string `json:"recipe"`
	Chaos                bool   `json:"chaos"`
	ChaosVersion         string `json:"chaos_version"`
	UpdateState          string `json:"update_state"`
	UpdateMessage        string `json:"update_message"`
	PreviousVersion      string `json:"previous_version"`
	PreviousChaosVersion string `json:"previous_chaos_version"`
	Source               string `json:"source"`
	// Services are every service of the stack with its replicas, when
	// the Engine API was asked; Missing says the stack was not there.
	Services []ServiceView `json:"services"`
	Missing  bool          `json:"missing"`
	// Settles and SettledOutcome name the pending deploy this
	// observation decided, and how it ended.
	Settles        string `json:"settles"`
	SettledOutcome string `json:"settled_outcome"`
	// Server is the abra server whose Engine was asked.
	Server string `json:"server"`
}

// ServiceView is one service of an observed stack.
type ServiceView struct {
	Name        string `json:"name"`
	Running     uint32 `json:"running"`
	Desired     uint32 `json:"desired"`
	UpdateState string `json:"update_state"`
	LastError   string `json:"last_error"`
}

// Same says o and p saw the same thing running, however and whoever
// looked: every field is equal but their source and what they settled.
func (o ObservedView) Same(p ObservedView) bool {
	o.Source, p.Source = "", ""
	o.Settles, p.Settles, o.SettledOutcome, p.SettledOutcome = "", "", "", ""
	if !slices.Equal(o.Services, p.Services) {
		return false
	}
	o.Services, p.Services = nil, nil
	return reflect.DeepEqual(o, p)
}

// ObservedViewOf is the one conversion of what Swarm was seen running into
// its view.
func ObservedViewOf(o *metav1.Observation) ObservedView {
	services := make([]ServiceView, len(o.GetServices()))
	for i, s := range o.GetServices() {
		services[i] = ServiceView{Name: s.GetName(), Running: s.GetRunning(), Desired: s.GetDesired(), UpdateState: s.GetUpdateState(), LastError: s.GetLastError()}
	}
	settled := ""
	if o.GetSettles() != "" {
		settled = OutcomeName(o.GetSettledOutcome())
	}
	return ObservedView{
		Services: services, Missing: o.GetMissing(),
		Settles: o.GetSettles(), SettledOutcome: settled, Server: o.GetServer(),
		Service: o.GetService(), Version: o.GetVersion(), Recipe: o.GetRecipe(),
		Chaos: o.GetChaos(), ChaosVersion: o.GetChaosVersion(),
		UpdateState: o.GetUpdateState(), UpdateMessage: o.GetUpdateMessage(),
		PreviousVersion: o.GetPreviousVersion(), PreviousChaosVersion: o.GetPreviousChaosVersion(),
		Source: o.GetSource(),
	}
}

// Running is the version the observation saw running: the chaos version
// under --chaos, else the version label.
func (o ObservedView) Running() string {
	if o.Chaos && o.ChaosVersion != "" {
		return o.ChaosVersion
	}
	return o.Version
}

// LockView is the body of a lock event.
type LockView struct {
	Expires time.Time `json:"expires"`
}

// PurgeView is the body of a purge event.
type PurgeView struct {
	EventID string `json:"event_id"`
	Path    string `json:"path"`
	Reason  string `json:"reason"`
}

// UnlockView is the body of an unlock event.
type UnlockView struct {
	LockID string `json:"lock_id"`
}

// RollbackView is the body of a rollback event.
type RollbackView struct {
	TargetVersion string `json:"target_version"`
	FromVersion   string `json:"from_version"`
}

// MoveView is the body of a move event.
type MoveView struct {
	FromServer string `json:"from_server"`
	ToServer   string `json:"to_server"`
	FromEnv    string `json:"from_env"`
	ToEnv      string `json:"to_env"`
}

// SecretView is the body of a secret event: a name and a version, never a
// value.
type SecretView struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// VolumeView is the body of a volume event.
type VolumeView struct {
	Name string `json:"name"`
}

// RestoreView is the body of a restore event.
type RestoreView struct {
	Snapshot string `json:"snapshot"`
}

// EnvView is the body of an env event: key names and operator names, never a
// value.
type EnvView struct {
	Added      []string `json:"added"`
	Changed    []string `json:"changed"`
	Removed    []string `json:"removed"`
	Recipients []string `json:"recipients"`
	Reason     string   `json:"reason"`
}

// Summary names an env change's keys, or counts them when there are many:
// "+SMTP_HOST ~DOMAIN", "+100 keys", "rekey to alice,bob". Never a value.
func (c *EnvView) Summary() string {
	if c.Reason == "rekey" {
		return "rekey to " + strings.Join(c.Recipients, ",")
	}
	var parts []string
	for _, g := range []struct {
		sign string
		keys []string
	}{{"+", c.Added}, {"~", c.Changed}, {"-", c.Removed}} {
		switch {
		case len(g.keys) > 3:
			parts = append(parts, g.sign+Count(len(g.keys), "key"))
		case len(g.keys) > 0:
			parts = append(parts, g.sign+strings.Join(g.keys, " "+g.sign))
		}
	}
	return strings.Join(parts, " ")
}

// ReleaseView is the body of a release event.
type ReleaseView struct {
	Commit string      `json:"commit"`
	Images []ImageView `json:"images"`
}

// ImageView is the image one service of a release runs.
type ImageView struct {
	Service string `json:"service"`
	Ref     string `json:"ref"`
}

// PromotionView is the body of a promote event.
type PromotionView struct {
	Previous string    `json:"previous"`
	Expected string    `json:"expected"`
	Rule     *RuleView `json:"rule"`
	Admitted []string  `json:"admitted"`
	Forced   bool      `json:"forced"`
}

// RuleView is a channel's rule: releases must have run on every app
// following From, without drift for Soak (Go's duration syntax, "0s" for
// none) and SoakSeconds.
type RuleView struct {
	From        string  `json:"from"`
	Soak        string  `json:"soak"`
	SoakSeconds float64 `json:"soak_seconds"`
}

// RuleViewOf is the one conversion of a channel's rule into its view.
func RuleViewOf(r *metav1.ChannelRule) *RuleView {
	if r == nil {
		return nil
	}
	d := r.GetSoak().AsDuration()
	return &RuleView{From: r.GetFrom(), Soak: d.String(), SoakSeconds: d.Seconds()}
}

// ViewOf makes the stable, readable view of ev.
func ViewOf(ev *metav1.Event) View {
	v := View{
		ID:            ev.GetId(),
		Time:          ev.GetTime().AsTime().UTC(),
		Kind:          KindName(ev.GetKind()),
		Outcome:       OutcomeName(ev.GetOutcome()),
		Project:       ev.GetAddress().GetProject(),
		Env:           ev.GetAddress().GetEnv(),
		Domain:        ev.GetAddress().GetApp(),
		Operator:      ev.GetActor().GetName(),
		OperatorEmail: ev.GetActor().GetEmail(),
		Host:          ev.GetActor().GetHost(),
		Parents:       nonNil(ev.GetParents()),
		Recipe:        ev.GetRecipe(),
		Version:       ev.GetVersion(),
		ChaosVersion:  ev.GetChaosVersion(),
		Command:       nonNil(ev.GetCommand()),
		Message:       ev.GetMessage(),
		BatchID:       ev.GetBatchId(),
		BatchSummary:  ev.GetBatchSummary(),
		BrokeLock:     ev.GetBrokeLock(),
		EnvDigest:     ev.GetEnvDigest(),
		LocalEnv:      ev.GetLocalEnv(),
		Stack:         ev.GetStack(),
		Format:        ev.GetFormat(),
	}
	if sw := ev.GetSwarm(); sw != nil {
		o := ObservedViewOf(sw)
		v.Swarm = &o
	}
	switch b := ev.GetBody().(type) {
	case *metav1.Event_Rollback:
		v.Rollback = &RollbackView{TargetVersion: b.Rollback.GetTargetVersion(), FromVersion: b.Rollback.GetFromVersion()}
	case *metav1.Event_Move:
		v.Move = &MoveView{FromServer: b.Move.GetFromServer(), ToServer: b.Move.GetToServer(), FromEnv: b.Move.GetFromEnv(), ToEnv: b.Move.GetToEnv()}
	case *metav1.Event_Secret:
		v.Secret = &SecretView{Name: b.Secret.GetName(), Version: b.Secret.GetVersion()}
	case *metav1.Event_Volume:
		v.Volume = &VolumeView{Name: b.Volume.GetName()}
	case *metav1.Event_Restore:
		v.Restore = &RestoreView{Snapshot: b.Restore.GetSnapshot()}
	case *metav1.Event_Env:
		v.EnvChange = &EnvView{
			Added:      nonNil(b.Env.GetAdded()),
			Changed:    nonNil(b.Env.GetChanged()),
			Removed:    nonNil(b.Env.GetRemoved()),
			Recipients: nonNil(b.Env.GetRecipients()),
			Reason:     b.Env.GetReason(),
		}
	case *metav1.Event_Observation:
		o := ObservedViewOf(b.Observation)
		v.Observation = &o
	case *metav1.Event_Lock:
		v.Lock = &LockView{Expires: b.Lock.GetExpires().AsTime().UTC()}
	case *metav1.Event_Unlock:
		v.Unlock = &UnlockView{LockID: b.Unlock.GetLockId()}
	case *metav1.Event_Purge:
		v.Purge = &PurgeView{EventID: b.Purge.GetEventId(), Path: b.Purge.GetPath(), Reason: b.Purge.GetReason()}
	case *metav1.Event_Release:
		images := make([]ImageView, len(b.Release.GetImages()))
		for i, im := range b.Release.GetImages() {
			images[i] = ImageView{Service: im.GetService(), Ref: im.GetRef()}
		}
		v.Release = &ReleaseView{Commit: b.Release.GetCommit(), Images: images}
	case *metav1.Event_Promotion:
		p := b.Promotion
		v.Channel = p.GetChannel()
		v.Promotion = &PromotionView{Previous: p.GetPrevious(), Expected: p.GetExpected(), Rule: RuleViewOf(p.GetRule()), Admitted: nonNil(p.GetAdmitted()), Forced: p.GetForced()}
	case *metav1.Event_Rule:
		v.Channel = b.Rule.GetChannel()
		v.Rule = RuleViewOf(b.Rule)
	case *metav1.Event_Follow:
		v.Channel = b.Follow.GetChannel()
	}
	return v
}

// nonNil keeps JSON arrays as [] rather than null, so consumers need not
// handle both.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteText writes ev as aligned "key: value" lines, one field per line and
// empty fields left out, so that `git log -p` through `meta cat` shows what
// changed in readable form.
func WriteText(w io.Writer, ev *metav1.Event) error {
	v := ViewOf(ev)
	var b strings.Builder
	line := func(key, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%-14s %s\n", key+":", value)
		}
	}
	line("event", v.ID)
	line("kind", v.Kind)
	line("outcome", v.Outcome)
	line("time", v.Time.Format(time.RFC3339Nano))
	if a := Address(ev); a.IsRecipe() {
		line("recipe log", a.Recipe()+"/"+a.App)
	} else {
		line("app", v.Domain)
		line("project", v.Project)
		line("env", v.Env)
	}
	line("operator", Operator(v.Operator, v.OperatorEmail))
	line("host", v.Host)
	line("parents", strings.Join(v.Parents, " "))
	line("recipe", v.Recipe)
	line("version", v.Version)
	line("chaos version", v.ChaosVersion)
	if r := v.Rollback; r != nil {
		line("rollback to", r.TargetVersion)
		line("rollback from", r.FromVersion)
	}
	if m := v.Move; m != nil {
		line("moved from", m.FromServer)
		line("moved to", m.ToServer)
		line("from env", m.FromEnv)
		line("to env", m.ToEnv)
	}
	// The labels fit the 14 columns of the keys: what Swarm did after a
	// deploy reads "swarm ...".
	observed := func(o *ObservedView, label map[string]string) {
		line(label["service"], o.Service)
		line(label["observed"], strings.TrimSpace(o.Version+" "+o.ChaosVersion))
		if o.Missing {
			line(label["observed"], "no service of the stack")
		}
		line(label["update state"], o.UpdateState)
		line(label["update note"], o.UpdateMessage)
		line(label["previous"], strings.TrimSpace(o.PreviousVersion+" "+o.PreviousChaosVersion))
		for _, s := range o.Services {
			tasks := fmt.Sprintf("%s %d/%d running", s.Name, s.Running, s.Desired)
			if s.UpdateState != "" {
				tasks += ", update " + s.UpdateState
			}
			if s.LastError != "" {
				tasks += ", last error: " + s.LastError
			}
			line(label["tasks"], tasks)
		}
		if o.Settles != "" {
			line(label["settles"], o.Settles+" as "+o.SettledOutcome)
		}
		line(label["server"], o.Server)
		line(label["source"], o.Source)
	}
	if o := v.Observation; o != nil {
		observed(o, map[string]string{"service": "service", "observed": "observed", "update state": "update state", "update note": "update note",
			"previous": "previous", "tasks": "tasks", "settles": "settles", "server": "server", "source": "source"})
	}
	line("stack", v.Stack)
	if o := v.Swarm; o != nil {
		observed(o, map[string]string{"service": "swarm service", "observed": "swarm runs", "update state": "swarm update", "update note": "swarm note",
			"previous": "swarm before", "tasks": "swarm tasks", "server": "swarm server", "source": "swarm source"})
	}
	if l := v.Lock; l != nil {
		line("lock expires", l.Expires.Format(time.RFC3339))
	}
	if u := v.Unlock; u != nil {
		line("unlocks", u.LockID)
	}
	line("broke lock", v.BrokeLock)
	if s := v.Secret; s != nil {
		line("secret", strings.TrimSpace(s.Name+" "+s.Version))
	}
	if vol := v.Volume; vol != nil {
		line("volume", vol.Name)
	}
	if r := v.Restore; r != nil {
		line("snapshot", r.Snapshot)
	}
	if e := v.EnvChange; e != nil {
		line("env change", e.Reason)
		line("keys added", strings.Join(e.Added, " "))
		line("keys changed", strings.Join(e.Changed, " "))
		line("keys removed", strings.Join(e.Removed, " "))
		line("recipients", strings.Join(e.Recipients, " "))
	}
	line("channel", v.Channel)
	if r := v.Release; r != nil {
		line("commit", r.Commit)
		for _, im := range r.Images {
			line("image", im.Service+"="+im.Ref)
		}
	}
	rule := func(label string, r *RuleView) {
		if r != nil && r.From != "" {
			line(label, "from "+r.From+", soak "+r.Soak)
		} else if r != nil {
			line(label, "none")
		}
	}
	if p := v.Promotion; p != nil {
		line("previous", p.Previous)
		line("expected", p.Expected)
		rule("rule", p.Rule)
		line("admitted by", strings.Join(p.Admitted, " "))
		if p.Forced {
			line("forced", "past the rule")
		}
	}
	rule("rule", v.Rule)
	line("command", strings.Join(v.Command, " "))
	line("batch", strings.TrimSpace(v.BatchID+" "+v.BatchSummary))
	line("env digest", v.EnvDigest)
	if v.LocalEnv {
		line("env", LocalEnvNote)
	}
	line("message", v.Message)
	if n := len(ev.ProtoReflect().GetUnknown()); n > 0 {
		line("unknown", fmt.Sprintf("%d bytes of fields from a newer meta, kept", n))
	}
	line("format", fmt.Sprint(v.Format))
	_, err := io.WriteString(w, b.String())
	return err
}
