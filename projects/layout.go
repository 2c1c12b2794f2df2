// Package projects is the layout of a meta log: which names may appear in it
// and where each app's event records live.
//
// A log holds one directory per app, projects/<project>/<env>/<app>/, and in
// it one directory per month of events (YYYY-MM, UTC) holding one file per
// event, <event id>.pb. Months keep every git tree meta rewrites on append
// small, however long an app's history grows.
package projects

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Root is the directory, relative to the repository root, that holds every
// app's records.
const Root = "projects"

// RecordExt is the file name extension of an event record.
const RecordExt = ".pb"

// monthLayout names the per-month directories; UTC so every machine agrees.
const monthLayout = "2006-01"

// Address locates one app: the project it belongs to, the env (environment or
// server) it runs in, and its domain.
type Address struct {
	Project string
	Env     string
	App     string
}

// String formats the address as project/env/app, and a recipe's log (see
// Recipes) as _recipes/recipe/log.
func (a Address) String() string {
	return a.Project + "/" + a.Env + "/" + a.App
}

// Validate reports the first component of a that is not an allowed name.
func (a Address) Validate() error {
	if a.IsRecipe() {
		return a.validateRecipeLog()
	}
	if err := ValidateProject(a.Project); err != nil {
		return err
	}
	if err := ValidateEnv(a.Env); err != nil {
		return err
	}
	return ValidateApp(a.App)
}

// Dir is the app's directory relative to the repository root.
func (a Address) Dir() string {
	return path.Join(Root, a.Project, a.Env, a.App)
}

// Month is the name of the directory that holds the records of events that
// happened at t.
func Month(t time.Time) string {
	return t.UTC().Format(monthLayout)
}

// RecordPath is where the record of event id, appended at t, lives. It does
// not validate; callers validate the address and id first.
func RecordPath(a Address, id string, t time.Time) string {
	return path.Join(a.Dir(), Month(t), id+RecordExt)
}

// EnvExt is the file name extension of an app's sealed env file; sops
// recognises dotenv files by it.
const EnvExt = ".env"

// EnvPath is where the app's sealed env file lives: in its directory, named
// like abra's own env file, <domain>.env.
func EnvPath(a Address) string {
	return path.Join(a.Dir(), a.App+EnvExt)
}

// ParseEnvPath returns the app whose env file p is, or an error when p is
// not the path of an env file.
func ParseEnvPath(p string) (Address, error) {
	parts := strings.Split(p, "/")
	if len(parts) != 5 || parts[0] != Root || parts[4] != parts[3]+EnvExt {
		return Address{}, &PathError{Path: p, Reason: "not projects/<project>/<env>/<app>/<app>.env"}
	}
	a := Address{Project: parts[1], Env: parts[2], App: parts[3]}
	if a.IsRecipe() {
		return Address{}, &PathError{Path: p, Reason: "a recipe's log has no env file"}
	}
	if err := a.Validate(); err != nil {
		return Address{}, &PathError{Path: p, Reason: err.Error()}
	}
	return a, nil
}

// Record is a parsed record path.
type Record struct {
	Address Address
	Month   string
	ID      string
}

// ParseRecordPath splits a slash-separated path relative to the repository
// root into its parts, and says what is wrong with it when it is not the path
// of a record.
func ParseRecordPath(p string) (Record, error) {
	parts := strings.Split(p, "/")
	if len(parts) != 6 || parts[0] != Root {
		return Record{}, &PathError{Path: p, Reason: "not of the form projects/<project>/<env>/<app>/<YYYY-MM>/<id>" + RecordExt}
	}
	r := Record{Address: Address{Project: parts[1], Env: parts[2], App: parts[3]}, Month: parts[4]}
	if err := r.Address.Validate(); err != nil {
		return Record{}, &PathError{Path: p, Reason: err.Error()}
	}
	if _, err := time.Parse(monthLayout, r.Month); err != nil || len(r.Month) != len(monthLayout) {
		return Record{}, &PathError{Path: p, Reason: fmt.Sprintf("month directory %q is not YYYY-MM", r.Month)}
	}
	name := parts[5]
	if !strings.HasSuffix(name, RecordExt) {
		return Record{}, &PathError{Path: p, Reason: "record file name does not end in " + RecordExt}
	}
	r.ID = strings.TrimSuffix(name, RecordExt)
	if err := ValidateID(r.ID); err != nil {
		return Record{}, &PathError{Path: p, Reason: err.Error()}
	}
	return r, nil
}

// PathError says why a path in the log tree is not a valid record path.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("invalid record path %q: %s", e.Path, e.Reason)
}

// Unwrap lets callers match ErrInvalidName.
func (e *PathError) Unwrap() error { return ErrInvalidName }

// ParseRef reads how a person names an app: its domain, or
// project/env/domain for a domain that has events in more than one place
// (a project or env of "*", or empty, matches any, as `--project` alone
// does).
// What it returns has App set, and Project and Env where given.
func ParseRef(ref string) (Address, error) {
	parts := strings.Split(ref, "/")
	var a Address
	switch len(parts) {
	case 1:
		a.App = ref
	case 3:
		wild := func(s string) string { return strings.TrimPrefix(s, "*") }
		a = Address{Project: wild(parts[0]), Env: wild(parts[1]), App: parts[2]}
	default:
		return Address{}, &NameError{Field: "app", Name: ref, Reason: "neither a domain nor project/env/domain"}
	}
	if len(parts) == 1 {
		return a, ValidateApp(a.App)
	}
	for _, part := range []struct {
		name     string
		validate func(string) error
		optional bool
	}{{a.Project, ValidateProject, true}, {a.Env, ValidateEnv, true}, {a.App, ValidateApp, false}} {
		if part.name == "" && part.optional {
			continue
		}
		var bad *NameError
		if err := part.validate(part.name); errors.As(err, &bad) {
			return Address{}, &NameError{Field: "app", Name: ref, Reason: fmt.Sprintf("as project/env/domain, its %s %q: %s", bad.Field, bad.Name, bad.Reason)}
		}
	}
	return a, nil
}

// Ref names the app at project and env, either of which may be empty
// (any), the way ParseRef reads it back: the bare domain when both are.
func Ref(project, env, domain string) string {
	if project == "" && env == "" {
		return domain
	}
	wild := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	return wild(project) + "/" + wild(env) + "/" + domain
}

// Matches reports whether b is an address that a, read as a reference
// (see ParseRef), names: the same app, in a's project and env where a
// gives them.
func (a Address) Matches(b Address) bool {
	return b.App == a.App && (a.Project == "" || a.Project == b.Project) && (a.Env == "" || a.Env == b.Env)
}
