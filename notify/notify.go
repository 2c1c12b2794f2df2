// Package notify tells followers (other operators, CI, dashboards) about
// new events over NATS: every event becomes one CloudEvent, in binary mode,
// on a subject that names its project, env, app and kind, kept in a
// JetStream stream so a follower that was away can catch up.
//
// It reads events the store produced; it never writes the log.
package notify

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// SubjectPrefix starts every event's subject.
const SubjectPrefix = "meta.events"

// Content types of a message body.
const (
	ContentProtobuf = "application/protobuf"
	ContentJSON     = "application/json"
)

// ErrSubject means an event's address cannot be made into NATS tokens.
var ErrSubject = errors.New("cannot form a NATS subject")

// Subject is where an event is published:
// meta.events.<project>.<env>.<app>.<kind>. NATS tokens may hold only
// letters, digits, '_' and '-', so a '.' in a name (every domain has them)
// becomes '_', and a kind this meta does not know, "unknown(N)", becomes
// "unknown-N". '_' is kept, so "a.b" and "a_b" share a token: the exact
// address is in the ce-subject header.
func Subject(ev *metav1.Event) (string, error) {
	a := ev.GetAddress()
	parts := []string{a.GetProject(), a.GetEnv(), a.GetApp(), kindToken(ev.GetKind())}
	for i, p := range parts {
		t, err := Token(p)
		if err != nil {
			return "", fmt.Errorf("event %s: %w", ev.GetId(), err)
		}
		parts[i] = t
	}
	return SubjectPrefix + "." + strings.Join(parts, "."), nil
}

// Token turns one name into a NATS subject token, or says why it cannot.
func Token(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty name", ErrSubject)
	}
	t := strings.ReplaceAll(name, ".", "_")
	for _, c := range t {
		if !tokenRune(c) {
			return "", fmt.Errorf("%w: %q holds %q", ErrSubject, name, c)
		}
	}
	return t, nil
}

// tokenRune says whether c may stand in a subject token as meta makes
// them, and so in a follower's name.
func tokenRune(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func kindToken(k metav1.Kind) string {
	name := record.KindName(k)
	if record.KnownKind(k) {
		return name
	}
	return fmt.Sprintf("unknown-%d", int32(k))
}

// Type is the CloudEvents type of an event of kind k.
func Type(k metav1.Kind) string { return "tech.coopcloud.meta.event." + kindToken(k) }

// Message makes the NATS message for ev: a CloudEvent in binary mode (its
// attributes in ce-* headers), the protobuf record as body, or its JSON
// view when asJSON, and Nats-Msg-Id set to the event id so JetStream drops
// a second publish of the same event. source identifies the log, e.g. its
// remote's URL.
func Message(ev *metav1.Event, source string, asJSON bool) (*nats.Msg, error) {
	subject, err := Subject(ev)
	if err != nil {
		return nil, err
	}
	var body []byte
	contentType := ContentProtobuf
	if asJSON {
		contentType = ContentJSON
		body, err = protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
	} else {
		body, err = proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	}
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.GetId(), err)
	}
	a := ev.GetAddress()
	msg := nats.NewMsg(subject)
	msg.Data = body
	msg.Header.Set("ce-specversion", "1.0")
	msg.Header.Set("ce-id", ev.GetId())
	msg.Header.Set("ce-source", source)
	msg.Header.Set("ce-type", Type(ev.GetKind()))
	msg.Header.Set("ce-time", ev.GetTime().AsTime().UTC().Format(time.RFC3339Nano))
	msg.Header.Set("ce-subject", a.GetProject()+"/"+a.GetEnv()+"/"+a.GetApp())
	msg.Header.Set("Content-Type", contentType)
	msg.Header.Set(nats.MsgIdHdr, ev.GetId())
	return msg, nil
}

// Decode reads an event back from a message Message made.
func Decode(msg *nats.Msg) (*metav1.Event, error) {
	switch ct := msg.Header.Get("Content-Type"); ct {
	case ContentProtobuf, "":
		return record.Unmarshal(msg.Data)
	case ContentJSON:
		ev := &metav1.Event{}
		if err := protojson.Unmarshal(msg.Data, ev); err != nil {
			return nil, fmt.Errorf("%w: %v", record.ErrCorrupt, err)
		}
		return ev, nil
	default:
		return nil, fmt.Errorf("message on %s: unknown content type %q", msg.Subject, ct)
	}
}
