package record

import (
	"fmt"
	"net/mail"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// Operator formats an actor as git does: "Name <email>", or the name alone.
func Operator(name, email string) string {
	if email == "" {
		return name
	}
	return name + " <" + email + ">"
}

// ParseOperator reads what Operator writes: "Name <email>" or a bare name.
func ParseOperator(s string) (*metav1.Actor, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("operator is empty")
	}
	if strings.ContainsAny(s, "\n\r\x00") {
		return nil, fmt.Errorf("operator %q contains a line break or NUL", s)
	}
	if strings.Contains(s, "<") {
		addr, err := mail.ParseAddress(s)
		if err != nil || addr.Name == "" {
			return nil, fmt.Errorf("operator %q is neither a name nor \"Name <email>\"", s)
		}
		return &metav1.Actor{Name: addr.Name, Email: addr.Address}, nil
	}
	return &metav1.Actor{Name: s}, nil
}
