package projects

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidName is what every name and path validation error matches, for
// callers that only need to know the input was bad.
var ErrInvalidName = errors.New("invalid name")

// NameError says which name was rejected and why.
type NameError struct {
	// Field is what the name was for: "project", "env", "app" or "event id".
	Field  string
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Name, e.Reason)
}

// Unwrap lets callers match ErrInvalidName.
func (e *NameError) Unwrap() error { return ErrInvalidName }

// maxLabel is the longest DNS label; project and env names follow the same
// limit so they stay usable as host names, stack names and NATS tokens.
const maxLabel = 63

// maxDomain is the longest DNS name in its text form.
const maxDomain = 253

// ValidateProject checks a project name: a lowercase label of letters,
// digits, '-', '_' and '.', starting with a letter or digit.
func ValidateProject(name string) error { return validateLabel("project", name, true) }

// ValidateEnv checks an env name; the rules are the project's, so a server's
// domain (e.g. "swarm.example.com") can name an env.
func ValidateEnv(name string) error { return validateLabel("env", name, true) }

// validateLabel checks a lowercase label of letters, digits, '-', '_'
// and, when dots, '.' (never two in a row), starting with a letter or
// digit, at most maxLabel long.
func validateLabel(field, name string, dots bool) error {
	if reason := commonProblem(name); reason != "" {
		return &NameError{Field: field, Name: name, Reason: reason}
	}
	if len(name) > maxLabel {
		return &NameError{Field: field, Name: name, Reason: fmt.Sprintf("longer than %d characters", maxLabel)}
	}
	if !isLowerAlnum(name[0]) {
		return &NameError{Field: field, Name: name, Reason: "must start with a lowercase letter or digit"}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isLowerAlnum(c) && c != '-' && c != '_' && (c != '.' || !dots) {
			return &NameError{Field: field, Name: name, Reason: charReason(c)}
		}
	}
	if strings.Contains(name, "..") {
		return &NameError{Field: field, Name: name, Reason: "contains \"..\""}
	}
	return nil
}

// ValidateApp checks an app's domain: a lowercase DNS name of labels made of
// letters, digits and inner '-', separated by single dots.
func ValidateApp(domain string) error {
	fail := func(reason string) error { return &NameError{Field: "app", Name: domain, Reason: reason} }
	if reason := commonProblem(domain); reason != "" {
		return fail(reason)
	}
	if len(domain) > maxDomain {
		return fail(fmt.Sprintf("longer than %d characters", maxDomain))
	}
	for _, label := range strings.Split(domain, ".") {
		switch {
		case label == "":
			return fail("empty label (leading, trailing or doubled dot)")
		case len(label) > maxLabel:
			return fail(fmt.Sprintf("label %q is longer than %d characters", label, maxLabel))
		case label[0] == '-' || label[len(label)-1] == '-':
			return fail(fmt.Sprintf("label %q starts or ends with '-'", label))
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isLowerAlnum(c) && c != '-' {
				return fail(charReason(c))
			}
		}
	}
	return nil
}

// ValidateID checks the shape of an event id: a ULID, 26 characters of
// Crockford's base32 in upper case.
func ValidateID(id string) error {
	if len(id) != IDLen {
		return &NameError{Field: "event id", Name: id, Reason: "not 26 characters long"}
	}
	if id[0] > '7' {
		return &NameError{Field: "event id", Name: id, Reason: "timestamp overflows 48 bits"}
	}
	for i := 0; i < len(id); i++ {
		if !strings.ContainsRune(IDAlphabet, rune(id[i])) {
			return &NameError{Field: "event id", Name: id, Reason: fmt.Sprintf("character %q is not in Crockford's base32 alphabet", id[i])}
		}
	}
	return nil
}

// IDAlphabet is the alphabet event ids are written in, the ULID's:
// Crockford's base32, upper case, without I, L, O and U.
const IDAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDLen is how many characters an event id has.
const IDLen = 26

// commonProblem catches what every path component must avoid.
func commonProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case name == "." || name == "..":
		return "a relative path component"
	case strings.ContainsRune(name, '/') || strings.ContainsRune(name, '\\'):
		return "contains a slash"
	case strings.ContainsRune(name, 0):
		return "contains a NUL byte"
	}
	return ""
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func charReason(c byte) string {
	if c >= 'A' && c <= 'Z' {
		return "contains an upper-case letter (names are lower case)"
	}
	return fmt.Sprintf("contains %q, which is not allowed", c)
}

// windowsDevices are the names Windows keeps for devices, whatever follows
// them after a dot: a directory named so cannot be made there.
var windowsDevices = map[string]bool{
	"con": true, "prn": true, "aux": true, "nul": true,
	"com1": true, "com2": true, "com3": true, "com4": true, "com5": true, "com6": true, "com7": true, "com8": true, "com9": true,
	"lpt1": true, "lpt2": true, "lpt3": true, "lpt4": true, "lpt5": true, "lpt6": true, "lpt7": true, "lpt8": true, "lpt9": true,
}

// ValidatePortable checks a name a new app, env or project would be filed
// under can be a directory on every system a clone runs on: Windows
// refuses con, nul and the other device names, even with a dot and more
// after them. Names already in a log are not checked again: a log holding
// one stays readable where it was made.
func ValidatePortable(field, name string) error {
	base, _, _ := strings.Cut(name, ".")
	if windowsDevices[strings.ToLower(base)] {
		return &NameError{Field: field, Name: name, Reason: fmt.Sprintf("%q is a name Windows keeps for a device, so no clone on Windows could hold it", base)}
	}
	return nil
}

// Portable is ValidatePortable for each part of the address.
func (a Address) Portable() error {
	for _, p := range []struct{ field, name string }{{"project", a.Project}, {"env", a.Env}, {"app", a.App}} {
		if err := ValidatePortable(p.field, p.name); err != nil {
			return err
		}
	}
	return nil
}
