// Package record encodes, decodes and checks the events of a meta log.
//
// A record is one metav1.Event in protobuf's binary encoding, stored alone
// in its own file. Writing is strict (Validate rejects anything incomplete or
// inconsistent); reading is lenient (Unmarshal accepts events from newer meta
// versions with fields, kinds and outcomes it does not know, and keeps the
// unknown fields).
package record

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
)

// FormatVersion is the record format this meta writes into Event.format.
//
// Change log:
//   - 1: first format: one Event per file at
//     projects/<project>/<env>/<app>/<YYYY-MM>/<id>.pb.
//   - 2: deploys may end rolled-back, paused or pending (what Swarm did)
//     and carry Event.swarm; observations carry every service of the
//     stack (replicas, last task error), missing, server, and may settle
//     a pending deploy (settles, settled_outcome). A reader of format 1
//     shows the new outcomes as unknown and changes no state by them.
//   - 3: recipes' logs, projects/_recipes/<recipe>/_releases/ (releases,
//     KIND_RELEASE) and projects/_recipes/<recipe>/<channel>/ (promotions
//     and the channel's rule, KIND_PROMOTE, KIND_CHANNEL_RULE); an app's
//     log says which channel it follows (KIND_FOLLOW, KIND_UNFOLLOW). A
//     reader of format 2 shows follows as unknown kinds and changes no
//     state by them, and finds no valid project under _recipes; meta.yaml
//     moves to version 4 with the first record of a recipe's log, so that
//     such a reader refuses to write to the log.
const FormatVersion = 3

// Redacted replaces every secret value in a recorded command line.
const Redacted = "<redacted>"

// ErrInvalid is matched by every error about an event that must not be
// written.
var ErrInvalid = errors.New("invalid event")

// ErrCorrupt is matched by every error about bytes that are not a record.
var ErrCorrupt = errors.New("corrupt record")

// maxRecord bounds a record's size: far above any real event, it keeps a
// hostile file from costing more than a moment to reject.
const maxRecord = 1 << 20

// Marshal checks ev and encodes it deterministically, so the same event
// always makes the same bytes (and the same git blob).
func Marshal(ev *metav1.Event) ([]byte, error) {
	if err := Validate(ev); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.GetId(), err)
	}
	if len(b) > MaxRecord {
		return nil, fmt.Errorf("%w: the event is %d bytes, more than the %d a record may have", ErrInvalid, len(b), MaxRecord)
	}
	return b, nil
}

// Unmarshal decodes a record. It accepts what newer meta versions write and
// keeps fields it does not know; it rejects bytes that are not an event, and
// events without the id, time and address every reader relies on.
func Unmarshal(data []byte) (*metav1.Event, error) {
	if len(data) > maxRecord {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d a record may have", ErrCorrupt, len(data), maxRecord)
	}
	ev := &metav1.Event{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := projects.ValidateID(ev.GetId()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if !ev.GetTime().IsValid() || ev.GetTime().AsTime().IsZero() {
		return nil, fmt.Errorf("%w: event %s has no valid time", ErrCorrupt, ev.GetId())
	}
	if err := address(ev).Validate(); err != nil {
		return nil, fmt.Errorf("%w: event %s: %v", ErrCorrupt, ev.GetId(), err)
	}
	return ev, nil
}

// Address is where ev belongs in the log tree.
func Address(ev *metav1.Event) projects.Address { return address(ev) }

func address(ev *metav1.Event) projects.Address {
	a := ev.GetAddress()
	return projects.Address{Project: a.GetProject(), Env: a.GetEnv(), App: a.GetApp()}
}

// Path is the record path of ev relative to the repository root.
func Path(ev *metav1.Event) string {
	return projects.RecordPath(address(ev), ev.GetId(), ev.GetTime().AsTime())
}

// CheckPath reports whether a record read from path p belongs there: its id
// names the file, its address names the directories and its time the month.
func CheckPath(ev *metav1.Event, p string) error {
	if want := Path(ev); want != p {
		return fmt.Errorf("%w: event %s at %s belongs at %s", ErrCorrupt, ev.GetId(), p, want)
	}
	return nil
}

// Validate checks everything a new event must have before it is written.
func Validate(ev *metav1.Event) error {
	if ev == nil {
		return fmt.Errorf("%w: no event", ErrInvalid)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if ev.GetFormat() == 0 {
		return bad("format version is not set")
	}
	if err := checkStrings(ev); err != nil {
		return err
	}
	if err := projects.ValidateID(ev.GetId()); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !ev.GetTime().IsValid() || ev.GetTime().AsTime().IsZero() {
		return bad("event %s has no valid time", ev.GetId())
	}
	idTime, _ := IDTime(ev.GetId())
	if !idTime.Equal(ev.GetTime().AsTime().Truncate(time.Millisecond)) {
		return bad("event %s: id time %s differs from event time %s", ev.GetId(), idTime.Format(time.RFC3339Nano), ev.GetTime().AsTime().Format(time.RFC3339Nano))
	}
	if err := address(ev).Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if strings.TrimSpace(ev.GetActor().GetName()) == "" {
		return bad("no operator name")
	}
	// The operator is also the author of the event's commit, and git ends
	// a name at "<" and an email at ">": either inside one makes a commit
	// git fsck refuses (a forge checking pushes then refuses every push
	// after it) and whose author reads as someone else.
	if a := ev.GetActor(); strings.ContainsAny(a.GetName()+a.GetEmail(), "<>") {
		return bad("operator %q <%s> holds a < or >, which a git author cannot", a.GetName(), a.GetEmail())
	}
	for _, p := range ev.GetParents() {
		if err := projects.ValidateID(p); err != nil {
			return fmt.Errorf("%w: parent: %w", ErrInvalid, err)
		}
	}
	if !KnownKind(ev.GetKind()) {
		return bad("kind %s cannot be appended", KindName(ev.GetKind()))
	}
	if _, ok := outcomeNames[ev.GetOutcome()]; !ok {
		return bad("outcome %s cannot be appended", OutcomeName(ev.GetOutcome()))
	}
	if l := LogOf(address(ev)); !InLog(ev.GetKind(), l) {
		return bad("a %s event lies in %s, not in %s (%s)", KindName(ev.GetKind()), LogFor(ev.GetKind()), l, address(ev))
	}
	if SwarmOutcome(ev.GetOutcome()) && !IsDeployKind(ev.GetKind()) {
		return bad("a %s event cannot end %s: only deploys, upgrades and rollbacks start a Swarm update", KindName(ev.GetKind()), OutcomeName(ev.GetOutcome()))
	}
	if ev.GetSwarm() != nil && !IsDeployKind(ev.GetKind()) {
		return bad("a %s event cannot say what Swarm did with an update: only deploys, upgrades and rollbacks start one", KindName(ev.GetKind()))
	}
	if o := ev.GetObservation(); o != nil && (o.GetSettles() == "") != (o.GetSettledOutcome() == metav1.Outcome_OUTCOME_UNSPECIFIED) {
		return bad("an observation that settles a deploy names both the deploy (settles) and its outcome (settled_outcome)")
	}
	if o := ev.GetObservation(); o.GetSettles() != "" {
		if err := projects.ValidateID(o.GetSettles()); err != nil {
			return fmt.Errorf("%w: settles: %w", ErrInvalid, err)
		}
		if _, ok := outcomeNames[o.GetSettledOutcome()]; !ok || o.GetSettledOutcome() == metav1.Outcome_OUTCOME_PENDING {
			return bad("an observation cannot settle a deploy as %s", OutcomeName(o.GetSettledOutcome()))
		}
	}
	// A failed deploy may not know what it tried to deploy; a successful
	// one must say what it put into service.
	if IsDeployKind(ev.GetKind()) && ev.GetOutcome() == metav1.Outcome_OUTCOME_SUCCEEDED && ev.GetVersion() == "" && ev.GetChaosVersion() == "" {
		return bad("%s needs a version (or a chaos version)", KindName(ev.GetKind()))
	}
	return validateBody(ev)
}

// validateBody checks that the body, if any, is the one the kind calls for
// (see the kinds table), with what the body cannot do without.
func validateBody(ev *metav1.Event) error {
	kind := ev.GetKind()
	name := KindName(kind)
	want, got := BodyOf(kind), BodyOfEvent(ev)
	if got != BodyNone && got != want {
		return fmt.Errorf("%w: a %s event cannot carry a %s body", ErrInvalid, name, got)
	}
	for _, f := range needed(ev) {
		if bodyField(ev, want, f) == "" {
			return &FieldError{Kind: name, Body: want, Field: f}
		}
	}
	switch want {
	case BodyRollback:
		if t := ev.GetRollback().GetTargetVersion(); t != "" && ev.GetVersion() != "" && t != ev.GetVersion() {
			return fmt.Errorf("%w: rollback target %q differs from version %q", ErrInvalid, t, ev.GetVersion())
		}
	case BodyEnv:
		if got == BodyNone || ev.GetEnvDigest() == "" {
			return fmt.Errorf("%w: an env event needs its change and the new file's digest", ErrInvalid)
		}
	case BodyObservation:
		if got == BodyNone {
			return fmt.Errorf("%w: an observe event needs what was observed", ErrInvalid)
		}
	case BodyLock:
		if exp := ev.GetLock().GetExpires(); !exp.IsValid() || !exp.AsTime().After(ev.GetTime().AsTime()) {
			return fmt.Errorf("%w: a lock needs an expiry after its own time: every lock is a lease", ErrInvalid)
		}
	case BodyUnlock:
		if ev.GetUnlock().GetLockId() == "" {
			return fmt.Errorf("%w: an unlock needs the id of the lock it releases", ErrInvalid)
		}
	case BodyRelease, BodyPromotion, BodyRule, BodyFollow:
		if err := validateChannels(ev); err != nil {
			return err
		}
	case BodyPurge:
		pg := ev.GetPurge()
		if err := projects.ValidateID(pg.GetEventId()); err != nil {
			return fmt.Errorf("%w: a purge needs the id of the event it purges: %w", ErrInvalid, err)
		}
		if strings.TrimSpace(pg.GetReason()) == "" {
			return fmt.Errorf("%w: a purge needs a reason (--reason): the log keeps who purged what, and why", ErrInvalid)
		}
		if rec, err := projects.ParseRecordPath(pg.GetPath()); err != nil || rec.ID != pg.GetEventId() || rec.Address != Address(ev) {
			return fmt.Errorf("%w: a purge names the record path of the event it purges, in its own app", ErrInvalid)
		}
	}
	if id := ev.GetBrokeLock(); id != "" {
		if err := projects.ValidateID(id); err != nil {
			return fmt.Errorf("%w: broke_lock: %w", ErrInvalid, err)
		}
	}
	if ev.GetLocalEnv() && (!IsDeployKind(ev.GetKind()) || ev.GetEnvDigest() != "") {
		return fmt.Errorf("%w: local_env marks a deploy that ran with a local env file, whose digest the log does not know: a %s event with env_digest %q cannot carry it", ErrInvalid, name, ev.GetEnvDigest())
	}
	if id := ev.GetBatchId(); id != "" {
		if err := projects.ValidateID(id); err != nil {
			return fmt.Errorf("%w: batch: %w (a batch id is what `meta batch start` printed)", ErrInvalid, err)
		}
	}
	if ev.GetBatchSummary() != "" && ev.GetBatchId() == "" {
		return fmt.Errorf("%w: a batch summary needs a batch id", ErrInvalid)
	}
	return nil
}
