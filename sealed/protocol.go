package sealed

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Protocol is the version of the JSON protocol between meta and meta-seal
// that this build speaks. Each request carries meta's (Request.Protocol),
// each response meta-seal's (Response.Protocol), and each side refuses any
// other: JSON decoding ignores fields it does not know and zeroes those it
// lacks, so a meta and a meta-seal from different builds would otherwise
// misread each other without a word. Raise it for any change a peer of the
// previous version would misread or silently drop, and log it here:
//
//	0: never sent; a peer built before versioning, whose JSON lacks the field.
//	1: Request.Protocol, Response.Protocol and the CodeProtocol error.
const Protocol = 1

// ModulePath is meta's Go module; the install commands in errors name it.
const ModulePath = "git.coopcloud.tech/coop-cloud/meta"

// ModuleVersion is the version of meta's module this binary was built from
// (meta's, or meta-seal's in meta-seal), or "" for a build from a work tree,
// which has no version that `go install` could fetch.
func ModuleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := ""
	if bi.Main.Path == ModulePath {
		v = bi.Main.Version
	} else {
		// Linked into another program: meta's module is a dependency.
		for _, m := range bi.Deps {
			if m.Path == ModulePath {
				v = m.Version
				if m.Replace != nil {
					v = m.Replace.Version
				}
			}
		}
	}
	// Go stamps a build from a modified work tree "+dirty": that version
	// exists nowhere else.
	if v == "(devel)" || strings.HasSuffix(v, "+dirty") {
		return ""
	}
	return v
}

// installHelper is the command that installs the meta-seal matching this
// meta; see installHelperAt.
func installHelper() string { return installHelperAt(ModuleVersion()) }

// installHelperAt is the command that installs the meta-seal of module
// version v: that exact version, or for a build from source (v == "") the
// source's own, @latest being possibly yet another build.
func installHelperAt(v string) string {
	if v != "" {
		return fmt.Sprintf("`go install %s/cmd/%s@%s`", ModulePath, HelperName, v)
	}
	return fmt.Sprintf("`go install ./cmd/...` in meta's source (or `go install %s/cmd/%s@latest` beside the latest meta)", ModulePath, HelperName)
}

// installBothAt is the command that installs meta and meta-seal from one
// build, module version v: what meta-seal tells a meta of another protocol,
// since it cannot know which version that meta is.
func installBothAt(v string) string {
	if v == "" {
		return "`go install ./cmd/...` in meta's source"
	}
	return fmt.Sprintf("`go install %s/cmd/...@%s`", ModulePath, v)
}

// versionError is meta's refusal of a response from a meta-seal that
// speaks protocol got instead of Protocol.
func (h Helper) versionError(got int) error {
	what := fmt.Sprintf("%s speaks protocol %d, this meta protocol %d", h.Path, got, Protocol)
	if got == 0 {
		what = fmt.Sprintf("%s has no version: older than this meta, which speaks protocol %d", h.Path, Protocol)
	}
	return fmt.Errorf("%w: %s; install the matching one with %s", ErrHelperVersion, what, installHelper())
}

// RequestVersionError is meta-seal's refusal of a request of protocol got
// instead of Protocol. A meta from before versioning shows the message as
// it is, so it says everything itself.
func RequestVersionError(got int) *Error {
	what := fmt.Sprintf("the request has protocol %d", got)
	if got == 0 {
		what = "the request has no version: meta is older than this meta-seal"
	}
	return &Error{Code: CodeProtocol, Message: fmt.Sprintf("%s speaks protocol %d but %s; install meta and %s from one build with %s",
		HelperName, Protocol, what, HelperName, installBothAt(ModuleVersion()))}
}
