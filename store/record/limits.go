package record

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// What a new event may hold. Far above any real event, the limits keep
// every record small enough for every reader to fold and every follower to
// receive (NATS carries at most 1 MiB a message, and JSON is larger than
// protobuf), and keep what people type from turning into terminal escapes
// when another operator reads the log.
const (
	// MaxRecord bounds an encoded record.
	MaxRecord = 64 << 10
	// maxShort bounds a version, a name, a server, a reason.
	maxShort = 1 << 10
	// maxText bounds the free text an event carries: its message, its
	// command line, what Swarm said of an update.
	maxText = 16 << 10
)

// textFields are the string fields that hold free text, and may hold line
// breaks and tabs; every other string is one short line.
var textFields = map[protoreflect.Name]bool{"message": true, "command": true, "update_message": true, "last_error": true}

// checkStrings refuses strings an event must not hold: invalid UTF-8,
// control characters (line breaks and tabs only in free text) and more
// than the limits, naming the field.
func checkStrings(ev *metav1.Event) error {
	var err error
	walkStrings(ev.ProtoReflect(), "", func(field string, name protoreflect.Name, s string) bool {
		limit, text := maxShort, textFields[name]
		if text {
			limit = maxText
		}
		switch {
		case len(s) > limit:
			err = fmt.Errorf("%w: %s is %d bytes, more than the %d it may have", ErrInvalid, field, len(s), limit)
		case !utf8.ValidString(s):
			err = fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
		default:
			if i := strings.IndexFunc(s, func(r rune) bool { return forbidden(r, text) }); i >= 0 {
				r, _ := utf8.DecodeRuneInString(s[i:])
				err = fmt.Errorf("%w: %s holds the control character %U; meta writes none, so that no terminal reading the log is driven or fooled by it", ErrInvalid, field, r)
			}
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if total := len(strings.Join(ev.GetCommand(), " ")); total > maxText {
		return fmt.Errorf("%w: the command line is %d bytes, more than the %d it may have", ErrInvalid, total, maxText)
	}
	return nil
}

// forbidden says r must not be in a string of an event: control characters
// (bar line breaks and tabs in free text), and the bidirectional controls
// that make text read otherwise than it is.
func forbidden(r rune, text bool) bool {
	if text && (r == '\n' || r == '\t') {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// walkStrings calls fn with every string set in m and its messages, by
// field path, until fn returns false.
func walkStrings(m protoreflect.Message, prefix string, fn func(path string, name protoreflect.Name, s string) bool) bool {
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := prefix + string(fd.Name())
		switch {
		case fd.Kind() == protoreflect.StringKind && fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = fn(fmt.Sprintf("%s[%d]", path, i), fd.Name(), l.Get(i).String())
			}
		case fd.Kind() == protoreflect.StringKind:
			ok = fn(path, fd.Name(), v.String())
		case fd.Kind() == protoreflect.MessageKind && fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = walkStrings(l.Get(i).Message(), fmt.Sprintf("%s[%d].", path, i), fn)
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			ok = walkStrings(v.Message(), path+".", fn)
		}
		return ok
	})
	return ok
}

// Fit makes every string of m one an event may hold, for what meta takes
// from elsewhere (what a Docker Engine says of its services): invalid
// UTF-8 and forbidden characters become U+FFFD, and a string is cut, at a
// character, to its field's limit.
func Fit(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		limit, text := maxShort, textFields[fd.Name()]
		if text {
			limit = maxText
		}
		switch {
		case fd.Kind() == protoreflect.StringKind && fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				l.Set(i, protoreflect.ValueOfString(fit(l.Get(i).String(), limit, text)))
			}
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(fit(v.String(), limit, text)))
		case fd.Kind() == protoreflect.MessageKind && fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				Fit(l.Get(i).Message())
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			Fit(v.Message())
		}
		return true
	})
}

func fit(s string, limit int, text bool) string {
	s = strings.Map(func(r rune) rune {
		if forbidden(r, text) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if len(s) > limit {
		// Cut mid-character, the character's first bytes are no longer
		// valid and go.
		s = strings.ToValidUTF8(s[:limit], "")
	}
	return s
}
