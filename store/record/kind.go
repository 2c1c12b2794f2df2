package record

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// kindNames are the names people type and read; the order of the enum is
// not theirs to care about.
var kindNames = map[metav1.Kind]string{
	metav1.Kind_KIND_DEPLOY:          "deploy",
	metav1.Kind_KIND_UPGRADE:         "upgrade",
	metav1.Kind_KIND_ROLLBACK:        "rollback",
	metav1.Kind_KIND_UNDEPLOY:        "undeploy",
	metav1.Kind_KIND_NEW:             "new",
	metav1.Kind_KIND_REMOVE:          "remove",
	metav1.Kind_KIND_RESTORE:         "restore",
	metav1.Kind_KIND_MOVE:            "move",
	metav1.Kind_KIND_SECRET_GENERATE: "secret-generate",
	metav1.Kind_KIND_SECRET_INSERT:   "secret-insert",
	metav1.Kind_KIND_SECRET_REMOVE:   "secret-remove",
	metav1.Kind_KIND_VOLUME_REMOVE:   "volume-remove",
	metav1.Kind_KIND_NOTE:            "note",
	metav1.Kind_KIND_ENV:             "env",
	metav1.Kind_KIND_OBSERVE:         "observe",
	metav1.Kind_KIND_LOCK:            "lock",
	metav1.Kind_KIND_UNLOCK:          "unlock",
}

// KindName is the name of k; a kind this version does not know, written by a
// newer meta, reads "unknown(N)".
func KindName(k metav1.Kind) string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "unknown(" + strconv.Itoa(int(k)) + ")"
}

// KnownKind reports whether this meta knows k; events of other kinds come
// from a newer meta and are kept and shown, never interpreted.
func KnownKind(k metav1.Kind) bool {
	_, ok := kindNames[k]
	return ok
}

// KindNames lists the kinds an operator may append, in a stable order.
func KindNames() []string {
	names := make([]string, 0, len(kindNames))
	for k, n := range kindNames {
		if Appendable(k) {
			names = append(names, n)
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
	switch k {
	case metav1.Kind_KIND_ENV, metav1.Kind_KIND_OBSERVE, metav1.Kind_KIND_LOCK, metav1.Kind_KIND_UNLOCK:
		return false
	}
	return KnownKind(k)
}

// ParseKind turns a kind's name back into the kind.
func ParseKind(name string) (metav1.Kind, error) {
	for k, n := range kindNames {
		if n == name {
			return k, nil
		}
	}
	return 0, inputError(fmt.Sprintf("unknown kind %q (want one of %s)", name, strings.Join(KindNames(), ", ")))
}

// IsSecretKind reports whether events of kind k carry a Secret body.
func IsSecretKind(k metav1.Kind) bool {
	return k == metav1.Kind_KIND_SECRET_GENERATE || k == metav1.Kind_KIND_SECRET_INSERT || k == metav1.Kind_KIND_SECRET_REMOVE
}

// IsDeployKind reports whether events of kind k put a version into service.
func IsDeployKind(k metav1.Kind) bool {
	return k == metav1.Kind_KIND_DEPLOY || k == metav1.Kind_KIND_UPGRADE || k == metav1.Kind_KIND_ROLLBACK
}

var outcomeNames = map[metav1.Outcome]string{
	metav1.Outcome_OUTCOME_SUCCEEDED: "succeeded",
	metav1.Outcome_OUTCOME_FAILED:    "failed",
	metav1.Outcome_OUTCOME_ABORTED:   "aborted",
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
	return 0, inputError(fmt.Sprintf("unknown outcome %q (want succeeded, failed or aborted)", name))
}

// inputError is a bad name typed by a person: it matches ErrInvalid without
// saying so in its text, which already says what is wrong.
type inputError string

func (e inputError) Error() string        { return string(e) }
func (e inputError) Is(target error) bool { return target == ErrInvalid }
