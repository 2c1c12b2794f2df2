package abra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrVersion: a string is not a recipe version.
var ErrVersion = errors.New("not a recipe version")

// ErrNotRepo: a recipe's directory is not a git checkout of its own.
var ErrNotRepo = errors.New("not a git repository")

// maxVersion bounds a version's length: real ones are a few dozen bytes,
// and a version ends up in records, command lines and terminals.
const maxVersion = 128

// Version is a recipe version as Co-op Cloud writes them,
// `<recipe semver>+<upstream version>`: 4.0.0+v1.93.0, 5.0.3+27.0.1-fpm,
// 2.0.1+1.0.6-social-amd64, or a bare semver, 1.2.0. The recipe's part is
// semver 2.0 (with its pre-release); the upstream part is what semver calls
// build metadata, which Co-op Cloud uses for the version of the software
// the recipe packages.
//
// The syntax is strict and nothing is normalised: the string a version was
// parsed from is the only one that gives it, so a version can stand for
// the git tag it came from. In particular a leading "v" (v1.2.0) is no
// recipe version: abra writes recipe tags without it (5.1.0+29.0.4), and a
// tag with it is some other tag (an upstream's, a mistake) that abra would
// not offer for a deploy either.
type Version struct {
	Major, Minor, Patch int
	// Pre is the semver pre-release, without its "-": "rc.1" of
	// 1.0.0-rc.1+2.3; empty for a release.
	Pre string
	// Upstream is the part after "+", without it; empty for a bare semver.
	Upstream string
}

// ParseVersion reads s as a recipe version. The error, which matches
// ErrVersion, names s and what is wrong with it.
func ParseVersion(s string) (Version, error) {
	v, why := parseVersion(s)
	if why != "" {
		return Version{}, fmt.Errorf("%w: %s: %s", ErrVersion, strconv.Quote(s), why)
	}
	return v, nil
}

func parseVersion(s string) (Version, string) {
	var v Version
	switch {
	case s == "":
		return v, "empty"
	case len(s) > maxVersion:
		return v, fmt.Sprintf("longer than %d bytes", maxVersion)
	case s[0] == 'v' || s[0] == 'V':
		return v, `a leading "v": recipe versions are tagged without it`
	}
	core, upstream, hasUpstream := strings.Cut(s, "+")
	if hasUpstream {
		if upstream == "" {
			return v, `nothing after "+"`
		}
		if i := strings.IndexFunc(upstream, func(r rune) bool { return !upstreamChar(r) }); i >= 0 {
			return v, fmt.Sprintf("upstream version %s has %s, which is not a letter, digit, '.', '-' or '_'", strconv.Quote(upstream), strconv.QuoteRune(rune(upstream[i])))
		}
		v.Upstream = upstream
	}
	core, pre, hasPre := strings.Cut(core, "-")
	if hasPre {
		if why := checkPre(pre); why != "" {
			return Version{}, why
		}
		v.Pre = pre
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Sprintf("%s is not MAJOR.MINOR.PATCH", strconv.Quote(core))
	}
	for i, p := range parts {
		n, why := number(p)
		if why != "" {
			return Version{}, fmt.Sprintf("%s %s", [3]string{"major", "minor", "patch"}[i], why)
		}
		*[3]*int{&v.Major, &v.Minor, &v.Patch}[i] = n
	}
	return v, ""
}

// number reads one numeric identifier of semver: digits, no leading zero.
func number(p string) (int, string) {
	switch {
	case p == "":
		return 0, "is empty"
	case strings.TrimLeft(p, "0123456789") != "":
		return 0, fmt.Sprintf("%s is not a number", strconv.Quote(p))
	case len(p) > 1 && p[0] == '0':
		return 0, fmt.Sprintf("%s has a leading zero", strconv.Quote(p))
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0, fmt.Sprintf("%s is too large", strconv.Quote(p))
	}
	return n, ""
}

// checkPre checks a semver pre-release: dot-separated identifiers of
// letters, digits and '-', none empty, the numeric ones without leading
// zeros.
func checkPre(pre string) string {
	for _, id := range strings.Split(pre, ".") {
		switch {
		case id == "":
			return fmt.Sprintf("pre-release %s has an empty identifier", strconv.Quote(pre))
		case strings.IndexFunc(id, func(r rune) bool { return !alnum(r) && r != '-' }) >= 0:
			return fmt.Sprintf("pre-release %s has a character that is not a letter, digit or '-'", strconv.Quote(pre))
		case isNumeric(id) && len(id) > 1 && id[0] == '0':
			return fmt.Sprintf("pre-release identifier %s has a leading zero", strconv.Quote(id))
		}
	}
	return ""
}

func alnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// upstreamChar: what an upstream version may hold. Semver's build metadata
// allows letters, digits, '-' and '.'; '_' is added because the upstream
// part is often a Docker image tag, which may have it.
func upstreamChar(r rune) bool { return alnum(r) || r == '-' || r == '.' || r == '_' }

func isNumeric(id string) bool { return id != "" && strings.TrimLeft(id, "0123456789") == "" }

// String is the version as Co-op Cloud writes it, the string it was
// parsed from.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	if v.Upstream != "" {
		s += "+" + v.Upstream
	}
	return s
}

// Compare orders v and w: -1 when v is older, 0 when they are the same
// version, +1 when v is newer. The recipe's semver decides first, by
// semver 2.0's precedence (major, minor, patch, and a pre-release before
// its release, pre-releases identifier by identifier: numeric ones as
// numbers and before alphanumeric ones, those in ASCII order, a shorter
// list before a longer one it starts). Semver ignores build metadata;
// here, for versions the same but for it, the upstream part decides,
// compared as a string (bare semver first), so that the order is total:
// two different versions never compare 0, and every sort of a recipe's
// tags comes out alike. That tie-break says nothing about which upstream
// is newer; two releases of one recipe semver are a mistake of the
// recipe's maintainers.
func (v Version) Compare(w Version) int {
	for _, d := range [3]int{cmpInt(v.Major, w.Major), cmpInt(v.Minor, w.Minor), cmpInt(v.Patch, w.Patch)} {
		if d != 0 {
			return d
		}
	}
	if d := comparePre(v.Pre, w.Pre); d != 0 {
		return d
	}
	return strings.Compare(v.Upstream, w.Upstream)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// comparePre orders pre-releases by semver 2.0 (11.3, 11.4): none is
// after any. Identifiers are checked, so numeric ones have no leading
// zeros and compare by length, then as strings, without overflowing.
func comparePre(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, y := as[i], bs[i]
		xn, yn := isNumeric(x), isNumeric(y)
		var d int
		switch {
		case xn && yn:
			d = cmpInt(len(x), len(y))
			if d == 0 {
				d = strings.Compare(x, y)
			}
		case xn:
			d = -1
		case yn:
			d = 1
		default:
			d = strings.Compare(x, y)
		}
		if d != 0 {
			return d
		}
	}
	return cmpInt(len(as), len(bs))
}

// CompareVersions parses a and b and orders them as Version.Compare does;
// the error names the one that is not a recipe version.
func CompareVersions(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// IsChaosVersion says s is the version abra gives a chaos deploy (--chaos,
// the recipe's working copy rather than a release): the recipe's commit,
// abbreviated (abra writes 8 hex digits) or whole, with "+U" when the
// working copy had uncommitted changes: eb96de94, eb96de94+U. It is never a
// release: no recipe version is hex digits alone.
func IsChaosVersion(s string) bool {
	s = strings.TrimSuffix(s, "+U")
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') }) < 0
}

// Tag is a release of a recipe: a git tag of its checkout whose name is a
// recipe version.
type Tag struct {
	// Version is the tag's name.
	Version string
	// Commit is the commit the tag points to (an annotated tag peeled), in
	// hex.
	Commit string
	// Tagged is when the tag was made: the tagger's date of an annotated
	// tag, the commit's committer date for a lightweight one (or an
	// annotated one without a tagger).
	Tagged time.Time
}

// SkippedTag is a tag of a recipe's checkout that is no release, and why.
type SkippedTag struct {
	Name, Reason string
}

// The format RecipeTags asks git for: one line a tag, fields separated by
// NUL. A ref name cannot hold a control character (git check-ref-format),
// so neither separator can be inside a field.
const tagFormat = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)%00%(taggerdate:unix)%00%(committerdate:unix)%00%(*committerdate:unix)"

// RecipeTags lists the releases of the recipe checked out in dir (abra
// clones each recipe to $ABRA_DIR/recipes/<recipe>) by its tags, oldest
// version first, with the tags that are no release and why: names that
// are not recipe versions (latest, v1), tags of a tree, a blob or another
// tag. It reads with the git binary, dir alone: not a repository dir is
// inside of, nor one git's variables in meta's environment point at.
//
// Errors name dir: it is missing (matching fs.ErrNotExist), it is no git
// checkout of its own (ErrNotRepo), or git failed.
func RecipeTags(ctx context.Context, dir string) ([]Tag, []SkippedTag, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("recipe %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, nil, fmt.Errorf("recipe %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, nil, fmt.Errorf("recipe %s: %w: not a directory", dir, ErrNotRepo)
	}
	if _, err := recipeGit(ctx, abs, "rev-parse", "--git-dir"); err != nil {
		if strings.Contains(err.Error(), "not a git repository") {
			return nil, nil, fmt.Errorf("recipe %s: %w", dir, ErrNotRepo)
		}
		return nil, nil, fmt.Errorf("recipe %s: %w", dir, err)
	}
	out, err := recipeGit(ctx, abs, "for-each-ref", "--format="+tagFormat, "refs/tags/")
	if err != nil {
		return nil, nil, fmt.Errorf("recipe %s: %w", dir, err)
	}
	type release struct {
		Tag
		v Version
	}
	var tags []release
	var skipped []SkippedTag
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, "\x00")
		if len(f) != 8 {
			return nil, nil, fmt.Errorf("recipe %s: git for-each-ref gave %s, not 8 fields", dir, strconv.Quote(l))
		}
		name := strings.TrimPrefix(f[0], "refs/tags/")
		v, why := parseVersion(name)
		if why != "" {
			skipped = append(skipped, SkippedTag{Name: name, Reason: "not a recipe version: " + why})
			continue
		}
		commit, date := f[2], f[6]
		switch {
		case f[1] == "tag" && f[3] == "commit":
			commit, date = f[4], f[5]
			if date == "" {
				date = f[7]
			}
		case f[1] == "tag":
			skipped = append(skipped, SkippedTag{Name: name, Reason: "an annotated tag of a " + f[3] + ", not of a commit"})
			continue
		case f[1] != "commit":
			skipped = append(skipped, SkippedTag{Name: name, Reason: "a tag of a " + f[1] + ", not of a commit"})
			continue
		}
		t, err := strconv.ParseInt(date, 10, 64)
		if err != nil || !isHexID(commit) {
			return nil, nil, fmt.Errorf("recipe %s: git for-each-ref gave %s for tag %s", dir, strconv.Quote(l), strconv.Quote(name))
		}
		tags = append(tags, release{Tag{Version: name, Commit: commit, Tagged: time.Unix(t, 0).UTC()}, v})
	}
	slices.SortFunc(tags, func(a, b release) int { return a.v.Compare(b.v) })
	out2 := make([]Tag, len(tags))
	for i, t := range tags {
		out2[i] = t.Tag
	}
	return out2, skipped, nil
}

// isHexID: an object id, SHA-1 or SHA-256, in lowercase hex.
func isHexID(s string) bool {
	return (len(s) == 40 || len(s) == 64) && strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') }) < 0
}

// recipeGit runs git in dir and returns its output. Its environment is
// meta's without any GIT_ variable: this is a local read, so none is
// needed (not even the ones for transports and credentials that
// store/gitrepo keeps), and without them none can point git at another
// repository (GIT_DIR, GIT_WORK_TREE, GIT_OBJECT_DIRECTORY, ... which a git
// hook running meta has set), change which refs it reads (GIT_NAMESPACE,
// GIT_REPLACE_REF_BASE), or add config (GIT_CONFIG_PARAMETERS,
// GIT_CONFIG_COUNT). Then: GIT_CEILING_DIRECTORIES at dir's parent, so
// that git does not climb from a dir that is no checkout into a repository
// around it (a home directory kept in git); no replace objects, so a tag
// reads as it is; messages in English, to be matched.
func recipeGit(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir), "GIT_NO_REPLACE_OBJECTS=1", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(errOut.String()), " ")
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("git %s: %w", args[0], ctx.Err())
		}
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	return out.String(), nil
}

// UpgradeCommand is the abra command line that upgrades the app at domain
// to version without asking anything: `abra app upgrade --no-input DOMAIN
// VERSION`. abra's grammar is `app upgrade <domain> [<version>]`; with
// --no-input (-n, abra's global switch) it takes the version given, or,
// with none (version ""), the one it picks itself (the newest release),
// and refuses a version that is not newer than the deployed one (that is a
// rollback). A version on the command line also wins over the one the app's
// env file names (TYPE=recipe:version), so --ignore-env-version is not
// needed. Neither --force
// nor --chaos is given: --force makes abra go on past its own checks,
// which are what makes an upgrade to the wrong version fail instead of
// happen, and --chaos deploys the recipe's working copy instead of a
// release, so it would deploy something other than the release asked for.
//
// When domain or version starts with "-", "--" comes before them, so that
// abra takes them as arguments and not as flags.
func UpgradeCommand(domain, version string) []string { return appCommand(Upgrade, domain, version) }

// RollbackCommand is the abra command line that rolls the app at domain
// back to version without asking anything: `abra app rollback --no-input
// DOMAIN VERSION`, abra's `app rollback <domain> [<version>]`; with no
// version, abra takes the release before the deployed one. As for
// UpgradeCommand, neither --force nor --chaos.
func RollbackCommand(domain, version string) []string { return appCommand(Rollback, domain, version) }

func appCommand(a Action, domain, version string) []string {
	argv := []string{"abra", "app", string(a), "--no-input"}
	if strings.HasPrefix(domain, "-") || strings.HasPrefix(version, "-") {
		argv = append(argv, "--")
	}
	argv = append(argv, domain)
	if version != "" {
		argv = append(argv, version)
	}
	return argv
}
