package record

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
)

// Body names the body an event carries: the field of Event's body oneof,
// by its proto name. Events of kinds without a body carry none.
type Body string

// Bodies, by their field names in proto/meta/v1/event.proto.
const (
	BodyNone        Body = ""
	BodyRollback    Body = "rollback"
	BodyMove        Body = "move"
	BodySecret      Body = "secret"
	BodyVolume      Body = "volume"
	BodyRestore     Body = "restore"
	BodyEnv         Body = "env"
	BodyObservation Body = "observation"
	BodyLock        Body = "lock"
	BodyUnlock      Body = "unlock"
	BodyPurge       Body = "purge"
	BodyRelease     Body = "release"
	BodyPromotion   Body = "promotion"
	BodyRule        Body = "rule"
	BodyFollow      Body = "follow"
)

// Log is which kind of log an event may lie in (see projects.Recipes).
type Log int

// The logs.
const (
	// AppLog: an app's, projects/<project>/<env>/<app>/.
	AppLog Log = iota
	// ReleasesLog: a recipe's releases, projects/_recipes/<recipe>/_releases/.
	ReleasesLog
	// ChannelLog: a recipe's channel, projects/_recipes/<recipe>/<channel>/.
	ChannelLog
	// AnyLog: any of them (a purge takes a mistaken record out of any log).
	AnyLog
)

func (l Log) String() string {
	return [...]string{"an app's log", "a recipe's releases log", "a channel's log", "any log"}[l]
}

// LogOf is the kind of log at a.
func LogOf(a projects.Address) Log {
	switch {
	case a.IsReleases():
		return ReleasesLog
	case a.IsChannel():
		return ChannelLog
	}
	return AppLog
}

// kindSpec is what the log knows of one kind. It is the one table the
// names people type, the bodies events carry, the validation of new events
// and the command-line flags of `meta append` derive from.
type kindSpec struct {
	name string
	body Body
	// required: an event of this kind must carry its body.
	required bool
	// succeeded are the body's fields an event of this kind must set when
	// it succeeded (a failed one may not have got as far as knowing them).
	succeeded []string
	// ownCommand: written only by a command of its own, which checks
	// what only it knows (the env file, Swarm's answer, the lease), never
	// by `meta append`.
	ownCommand bool
	// deploy: puts a version into service.
	deploy bool
	// versioned: an event of this kind says which recipe version it
	// concerns (deploys, and the version an app is created with or
	// arrives with after a move); on any other kind a version means
	// nothing, and `meta append` refuses one rather than record it.
	versioned bool
	// lease: takes or ends a lease, which counts only once the remote has
	// it before anyone else's.
	lease bool
	// log: the log events of this kind lie in (AppLog unless said).
	log Log
}

var kinds = map[metav1.Kind]kindSpec{
	metav1.Kind_KIND_DEPLOY:          {name: "deploy", deploy: true, versioned: true},
	metav1.Kind_KIND_UPGRADE:         {name: "upgrade", deploy: true, versioned: true},
	metav1.Kind_KIND_ROLLBACK:        {name: "rollback", body: BodyRollback, deploy: true, versioned: true},
	metav1.Kind_KIND_UNDEPLOY:        {name: "undeploy"},
	metav1.Kind_KIND_NEW:             {name: "new", versioned: true},
	metav1.Kind_KIND_REMOVE:          {name: "remove"},
	metav1.Kind_KIND_RESTORE:         {name: "restore", body: BodyRestore},
	metav1.Kind_KIND_MOVE:            {name: "move", body: BodyMove, succeeded: []string{"to_server"}, versioned: true},
	metav1.Kind_KIND_SECRET_GENERATE: {name: "secret-generate", body: BodySecret, required: true, succeeded: []string{"version"}},
	metav1.Kind_KIND_SECRET_INSERT:   {name: "secret-insert", body: BodySecret, required: true, succeeded: []string{"version"}},
	metav1.Kind_KIND_SECRET_REMOVE:   {name: "secret-remove", body: BodySecret, required: true},
	metav1.Kind_KIND_VOLUME_REMOVE:   {name: "volume-remove", body: BodyVolume, required: true},
	metav1.Kind_KIND_NOTE:            {name: "note"},
	metav1.Kind_KIND_ENV:             {name: "env", body: BodyEnv, required: true, ownCommand: true},
	metav1.Kind_KIND_OBSERVE:         {name: "observe", body: BodyObservation, required: true, ownCommand: true},
	metav1.Kind_KIND_LOCK:            {name: "lock", body: BodyLock, required: true, ownCommand: true, lease: true},
	metav1.Kind_KIND_UNLOCK:          {name: "unlock", body: BodyUnlock, required: true, ownCommand: true, lease: true},
	metav1.Kind_KIND_PURGE:           {name: "purge", body: BodyPurge, required: true, ownCommand: true, log: AnyLog},
	metav1.Kind_KIND_RELEASE:         {name: "release", body: BodyRelease, ownCommand: true, log: ReleasesLog},
	metav1.Kind_KIND_PROMOTE:         {name: "promote", body: BodyPromotion, required: true, ownCommand: true, log: ChannelLog},
	metav1.Kind_KIND_CHANNEL_RULE:    {name: "channel-rule", body: BodyRule, required: true, ownCommand: true, log: ChannelLog},
	metav1.Kind_KIND_FOLLOW:          {name: "follow", body: BodyFollow, required: true, ownCommand: true},
	metav1.Kind_KIND_UNFOLLOW:        {name: "unfollow", body: BodyFollow, required: true, ownCommand: true},
}

// LogFor is the kind of log events of kind k lie in.
func LogFor(k metav1.Kind) Log { return kinds[k].log }

// InLog says events of kind k may lie in a log of kind l.
func InLog(k metav1.Kind, l Log) bool {
	want := kinds[k].log
	return want == AnyLog || want == l
}

// bodyFields are the fields of each body a person or a wrapper may set by
// name (see SetBody), with the ones an event of it cannot do without.
var bodyFields = map[Body]struct{ settable, required []string }{
	BodyRollback: {settable: []string{"target_version", "from_version"}},
	BodyMove:     {settable: []string{"from_server", "to_server", "from_env", "to_env"}},
	BodySecret:   {settable: []string{"name", "version"}, required: []string{"name"}},
	BodyVolume:   {settable: []string{"name"}, required: []string{"name"}},
	BodyRestore:  {settable: []string{"snapshot"}},
}

// KindName is the name of k; a kind this version does not know, written by a
// newer meta, reads "unknown(N)".
func KindName(k metav1.Kind) string {
	if s, ok := kinds[k]; ok {
		return s.name
	}
	return "unknown(" + strconv.Itoa(int(k)) + ")"
}

// KnownKind reports whether this meta knows k; events of other kinds come
// from a newer meta and are kept and shown, never interpreted.
func KnownKind(k metav1.Kind) bool {
	_, ok := kinds[k]
	return ok
}

// KindNames lists the kinds an operator may append, in a stable order.
func KindNames() []string { return kindNames(Appendable) }

// AllKindNames lists every kind this meta knows, in a stable order: what
// `meta log --kind` takes.
func AllKindNames() []string { return kindNames(KnownKind) }

func kindNames(keep func(metav1.Kind) bool) []string {
	names := make([]string, 0, len(kinds))
	for k, s := range kinds {
		if keep(k) {
			names = append(names, s.name)
		}
	}
	sort.Strings(names)
	return names
}

// Appendable reports whether `meta append` may write events of kind k. Env
// events are not: they exist only together with the env file they describe,
// which the env commands write. Observations, locks and unlocks have their
// own commands, which check what only they know (Swarm's answer, the lease).
func Appendable(k metav1.Kind) bool {
	s, ok := kinds[k]
	return ok && !s.ownCommand
}

// ParseKind turns a kind's name back into the kind, for `meta append`:
// its error for a name it does not know lists the kinds an operator may
// append (every kind is known; append refuses the others with its own
// message).
func ParseKind(name string) (metav1.Kind, error) { return parseKind(name, KindNames()) }

// ParseAnyKind is ParseKind whose error lists every kind: for reading the
// log, where each is as good as another.
func ParseAnyKind(name string) (metav1.Kind, error) { return parseKind(name, AllKindNames()) }

func parseKind(name string, want []string) (metav1.Kind, error) {
	for k, s := range kinds {
		if s.name == name {
			return k, nil
		}
	}
	return 0, inputError(fmt.Sprintf("unknown kind %q (want one of %s)", name, strings.Join(want, ", ")))
}

// IsSecretKind reports whether events of kind k carry a Secret body.
func IsSecretKind(k metav1.Kind) bool { return kinds[k].body == BodySecret }

// IsDeployKind reports whether events of kind k put a version into service.
func IsDeployKind(k metav1.Kind) bool { return kinds[k].deploy }

// IsVersioned reports whether events of kind k carry a recipe version
// (and chaos version): deploys, new apps, moves.
func IsVersioned(k metav1.Kind) bool { return kinds[k].versioned }

// IsLeaseKind reports whether events of kind k take or end a lease.
func IsLeaseKind(k metav1.Kind) bool { return kinds[k].lease }

// BodyOf is the body events of kind k carry, BodyNone for none.
func BodyOf(k metav1.Kind) Body { return kinds[k].body }

// KindsWith lists the names of the kinds whose events carry body b.
func KindsWith(b Body) []string {
	var out []string
	for _, s := range kinds {
		if b != BodyNone && s.body == b {
			out = append(out, s.name)
		}
	}
	sort.Strings(out)
	return out
}

// VersionedKinds names the kinds that carry a recipe version, sorted.
func VersionedKinds() []string {
	var out []string
	for _, s := range kinds {
		if s.versioned {
			out = append(out, s.name)
		}
	}
	sort.Strings(out)
	return out
}

// BodyOfEvent is the body ev carries, BodyNone for none.
func BodyOfEvent(ev *metav1.Event) Body {
	m := ev.ProtoReflect()
	f := m.WhichOneof(m.Descriptor().Oneofs().ByName("body"))
	if f == nil {
		return BodyNone
	}
	return Body(f.Name())
}

// SetBody gives ev the body its kind calls for, with the string fields
// named in values (proto names, e.g. "name" and "version" of a secret) set.
// It refuses a field the body does not have and, for a kind that needs its
// body, a required field left empty (a FieldError). A body the kind may go
// without and none of whose fields is set is left out.
func SetBody(ev *metav1.Event, values map[string]string) error {
	kind := ev.GetKind()
	b := BodyOf(kind)
	if b == BodyNone {
		if len(values) > 0 {
			return fmt.Errorf("%w: %s events carry no body", ErrInvalid, KindName(kind))
		}
		return nil
	}
	spec := bodyFields[b]
	empty := true
	for _, v := range values {
		empty = empty && v == ""
	}
	if empty && len(needed(ev)) == 0 {
		return nil
	}
	m := ev.ProtoReflect()
	field := m.Descriptor().Fields().ByName(protoreflect.Name(b))
	body := m.NewField(field).Message()
	for name, v := range values {
		if !contains(spec.settable, name) {
			return fmt.Errorf("%w: a %s has no field %s", ErrInvalid, b, name)
		}
		if v != "" {
			body.Set(body.Descriptor().Fields().ByName(protoreflect.Name(name)), protoreflect.ValueOfString(v))
		}
	}
	for _, name := range needed(ev) {
		if values[name] == "" {
			return &FieldError{Kind: KindName(kind), Body: b, Field: name}
		}
	}
	m.Set(field, protoreflect.ValueOfMessage(body))
	return nil
}

// needed are the fields of its body ev cannot do without: those its body
// always needs, when its kind requires the body, and those its kind needs
// of a success.
func needed(ev *metav1.Event) []string {
	spec := kinds[ev.GetKind()]
	var out []string
	if spec.required {
		out = append(out, bodyFields[spec.body].required...)
	}
	if ev.GetOutcome() == metav1.Outcome_OUTCOME_SUCCEEDED {
		out = append(out, spec.succeeded...)
	}
	return out
}

// FieldError says which field of its body an event cannot do without.
type FieldError struct {
	Kind  string
	Body  Body
	Field string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: %s needs a %s %s", ErrInvalid, e.Kind, e.Body, e.Field)
}

// Is lets callers match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// bodyField is the string field of ev's body b, "" when ev carries no
// such body.
func bodyField(ev *metav1.Event, b Body, field string) string {
	m := ev.ProtoReflect()
	f := m.Descriptor().Fields().ByName(protoreflect.Name(b))
	if f == nil || !m.Has(f) {
		return ""
	}
	body := m.Get(f).Message()
	return body.Get(body.Descriptor().Fields().ByName(protoreflect.Name(field))).String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var outcomeNames = map[metav1.Outcome]string{
	metav1.Outcome_OUTCOME_SUCCEEDED:   "succeeded",
	metav1.Outcome_OUTCOME_FAILED:      "failed",
	metav1.Outcome_OUTCOME_ABORTED:     "aborted",
	metav1.Outcome_OUTCOME_ROLLED_BACK: "rolled-back",
	metav1.Outcome_OUTCOME_PAUSED:      "paused",
	metav1.Outcome_OUTCOME_PENDING:     "pending",
}

// SwarmOutcome says o is one only Swarm decides: a deploy rolled back or
// paused by Swarm's update, or pending until someone sees which.
func SwarmOutcome(o metav1.Outcome) bool {
	switch o {
	case metav1.Outcome_OUTCOME_ROLLED_BACK, metav1.Outcome_OUTCOME_PAUSED, metav1.Outcome_OUTCOME_PENDING:
		return true
	}
	return false
}

// OutcomeName is the name of o, "unknown(N)" for one this version does not
// know.
func OutcomeName(o metav1.Outcome) string {
	if n, ok := outcomeNames[o]; ok {
		return n
	}
	return "unknown(" + strconv.Itoa(int(o)) + ")"
}

// ParseOutcome turns an outcome's name back into the outcome.
func ParseOutcome(name string) (metav1.Outcome, error) {
	for o, n := range outcomeNames {
		if n == name {
			return o, nil
		}
	}
	return 0, inputError(fmt.Sprintf("unknown outcome %q (want succeeded, failed, aborted, rolled-back, paused or pending)", name))
}

// inputError is a bad name typed by a person: it matches ErrInvalid without
// saying so in its text, which already says what is wrong.
type inputError string

func (e inputError) Error() string        { return string(e) }
func (e inputError) Is(target error) bool { return target == ErrInvalid }
