// Package abra understands what meta needs of Co-op Cloud's abra: which app
// command a command line runs and on which app, which of its words may be
// recorded, where abra keeps an app's env file, which recipe version that
// file says is deployed, and the stack name abra gives an app in Docker
// Swarm. It runs nothing and records nothing.
package abra

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// ErrNotApp: the command line is not an `abra app` command meta can read.
var ErrNotApp = errors.New("not an abra app command")

// Action is an abra app command, by its full name.
type Action string

// The app commands that change what runs on a server, the ones meta records.
const (
	Deploy         Action = "deploy"
	Upgrade        Action = "upgrade"
	Rollback       Action = "rollback"
	Undeploy       Action = "undeploy"
	Move           Action = "move"
	New            Action = "new"
	Remove         Action = "remove"
	Restore        Action = "restore"
	SecretGenerate Action = "secret generate"
	SecretInsert   Action = "secret insert"
	SecretRemove   Action = "secret remove"
	VolumeRemove   Action = "volume remove"
)

// Command is an `abra app ...` command line as meta reads it.
type Command struct {
	// Action is the full name of the app command, e.g. "deploy" or
	// "secret insert"; for commands meta does not record, their name as
	// typed ("ps", "logs").
	Action Action
	// Domain is the app's domain: the first argument, or for `app new`
	// the --domain flag (empty when abra will ask for it).
	Domain string
	// Args are the positional arguments after the domain (for new: all of
	// them, the recipe first).
	Args []string
	// Chaos is --chaos: deploy the recipe's working copy, not a release.
	Chaos bool
	// Secrets is `app new --secrets`: generate the app's secrets too.
	Secrets bool
	// All is --all (secret generate/remove).
	All bool
	// Server is `app new --server`.
	Server string
	// Snapshot is `app restore --snapshot`.
	Snapshot string
}

// StateChanging says the command changes what runs on a server, so the
// operator log records it. `app new` does only with --secrets: without, it
// writes a local env file and nothing else.
func (c Command) StateChanging() bool {
	switch c.Action {
	case Deploy, Upgrade, Rollback, Undeploy, Move, Remove, Restore, SecretGenerate, SecretInsert, SecretRemove, VolumeRemove:
		return true
	case New:
		return c.Secrets
	}
	return false
}

// VersionArg is the version the command line asks for, or "": the first
// argument (deploy, upgrade, rollback), the second after the recipe (new).
func (c Command) VersionArg() string {
	if c.Action == New {
		return c.Arg(1)
	}
	return c.Arg(0)
}

// RecipeArg is the recipe `app new` names, "" for other commands.
func (c Command) RecipeArg() string {
	if c.Action == New {
		return c.Arg(0)
	}
	return ""
}

// Arg is the i-th positional argument after the domain, or "".
func (c Command) Arg(i int) string {
	if i < len(c.Args) {
		return c.Args[i]
	}
	return ""
}

// ParseCommand reads argv, the whole command line from the abra executable
// on (argv[0] is abra itself). Commands other than `abra app ...` give
// ErrNotApp, and are run without meta's help.
func ParseCommand(argv []string) (Command, error) {
	l := parse(argv)
	if !l.app || l.action == "" {
		return Command{}, fmt.Errorf("%w: %s", ErrNotApp, strings.Join(argv, " "))
	}
	c := Command{Action: l.action}
	for _, f := range l.flags {
		c.flag(f)
	}
	if c.Action == New {
		c.Args = l.args
		return c, nil
	}
	if len(l.args) > 0 {
		c.Domain = l.args[0]
	}
	if len(l.args) > 1 {
		c.Args = l.args[1:]
	}
	return c, nil
}

// flag notes what meta needs of one flag abra knows for the command.
func (c *Command) flag(f flagSet) {
	on, _ := strconv.ParseBool(f.value) // a switch's value, checked by parse
	switch f.long {
	case "chaos":
		c.Chaos = on
	case "secrets":
		c.Secrets = on
	case "all":
		c.All = on
	case "server":
		c.Server = f.value
	case "snapshot":
		c.Snapshot = f.value
	case "domain":
		c.Domain = f.value
	}
}

// Redact returns argv with every word that meta cannot be sure holds no
// secret replaced by record.Redacted. It reads the line by abra's own
// grammar: it finds the command and its flags as abra does, wherever the
// flags are put and however they are written (--flag=value, --flag value,
// -abc bundles), takes every word after "--" as an argument, and keeps
// only what is known to be harmless: the command's names, the flags abra
// knows for it with their values, and the arguments that name things (the
// domain, a version, a secret's name). So it redacts:
//
//   - DATA of `app secret insert DOMAIN NAME VERSION DATA`, however it is
//     typed: after "--", starting with "-", or as a file with --file;
//   - for every command meta does not know word by word (`app run`, `app
//     cmd`, any other app command), everything after the domain;
//   - for commands outside `abra app` (`server add`, ...), every argument;
//   - any word abra would not take (an unknown flag or command, a switch
//     given a value that is not true or false, an argument too many) and,
//     since from there on meta cannot be sure what abra makes of the rest,
//     every later word but the names of flags and commands abra knows.
//
// A word that is already record.Redacted is one of those, so Redact gives
// the same line when applied again. isAbra is false, and argv comes back
// as it is, when argv[0] does not run abra (its file name does not start
// with "abra"). argv itself is not changed.
func Redact(argv []string) (out []string, isAbra bool) {
	if len(argv) == 0 || !strings.HasPrefix(strings.ToLower(filepath.Base(argv[0])), "abra") {
		return argv, false
	}
	l := parse(argv)
	out = make([]string, len(argv))
	unsure := false
	for i, w := range l.words {
		keep := false
		switch w.kind {
		case wordProgram, wordCommand, wordFlag, wordEnd:
			keep = true
		case wordValue, wordFlagValue:
			keep = !unsure
		case wordArg:
			keep = !unsure && w.arg < l.names()
		}
		if !keep {
			out[i], unsure = record.Redacted, true
			continue
		}
		out[i] = argv[i]
	}
	return out, true
}

// The grammar below is abra's as its command definitions give it (the
// cobra commands of abra's cli/ and cli/app/ packages, abra 0.10 and later,
// with the names and aliases of the urfave/cli abra before it): names,
// aliases, flags, and how many arguments name something harmless. abra's
// flag parsing (spf13/pflag) takes flags anywhere among the arguments
// until "--", long ones as --name=value or --name value, short ones
// bundled (-fC), a short flag's value in the same word (-sX, -s=X) or the
// next; an unknown flag is an error. The table lists only what meta must
// know: a flag or command missing from it costs a redacted word in the
// log, never a secret.

// flagSpec is one flag abra takes.
type flagSpec struct {
	long, short string
	// value: the flag takes a value; otherwise it is a switch.
	value bool
}

// globalFlags are abra's own switches, which every command takes and which
// may come before any of them.
var globalFlags = []flagSpec{{long: "debug", short: "d"}, {long: "no-input", short: "n"}, {long: "offline", short: "o"}, {long: "help", short: "h"}}

// appSpec is an abra app command whose every argument meta knows.
type appSpec struct {
	name Action
	// aliases are the other names of its last word.
	aliases []string
	flags   []flagSpec
	// names is how many arguments name something (the domain, a version,
	// a secret's or a volume's name); arguments after them are redacted.
	names int
}

var (
	chaos = flagSpec{long: "chaos", short: "C"}
	force = flagSpec{long: "force", short: "f"}
	all   = flagSpec{long: "all", short: "a"}
	pass  = flagSpec{long: "pass", short: "P"}
	// The checks deploy, upgrade and rollback can be told to skip.
	deployFlags = []flagSpec{chaos, force, {long: "no-domain-checks", short: "D"}, {long: "no-converge-checks", short: "c"}, {long: "ignore-env-version", short: "i"}}
)

var appSpecs = []appSpec{
	// deploy|upgrade|rollback DOMAIN [VERSION]
	{name: Deploy, aliases: []string{"d"}, flags: deployFlags, names: 2},
	{name: Upgrade, aliases: []string{"up"}, flags: append([]flagSpec{{long: "releasenotes", short: "r"}}, deployFlags...), names: 2},
	{name: Rollback, aliases: []string{"rl"}, flags: deployFlags, names: 2},
	// undeploy DOMAIN; move DOMAIN SERVER; remove DOMAIN
	{name: Undeploy, aliases: []string{"un"}, flags: []flagSpec{{long: "prune", short: "p"}}, names: 1},
	{name: Move, aliases: []string{"m", "mv"}, flags: []flagSpec{{long: "dry-run", short: "r"}}, names: 2},
	{name: Remove, aliases: []string{"rm", "delete"}, flags: []flagSpec{force}, names: 1},
	// new [RECIPE] [VERSION], the domain in --domain
	{name: New, aliases: []string{"n"}, flags: []flagSpec{
		{long: "server", short: "s", value: true}, {long: "domain", short: "D", value: true}, {long: "secrets", short: "S"}, pass, chaos,
	}, names: 2},
	// restore DOMAIN [SERVICE]
	{name: Restore, aliases: []string{"rs"}, flags: []flagSpec{{long: "snapshot", short: "s", value: true}, {long: "target", short: "t", value: true}, chaos}, names: 2},
	// secret generate DOMAIN [NAME VERSION]: abra makes the value and
	// prints it; it is never on the command line.
	{name: SecretGenerate, aliases: []string{"g", "gen"}, flags: []flagSpec{all, {long: "machine", short: "m"}, chaos}, names: 3},
	// secret insert DOMAIN NAME VERSION DATA: DATA is the secret itself
	// (with --file, the file holding it), never kept.
	{name: SecretInsert, aliases: []string{"i"}, flags: []flagSpec{{long: "file", short: "f"}, {long: "trim", short: "t"}, chaos}, names: 3},
	// secret remove DOMAIN [NAME]; volume remove DOMAIN [VOLUME]
	{name: SecretRemove, aliases: []string{"rm", "delete"}, flags: []flagSpec{all, pass, chaos}, names: 2},
	{name: VolumeRemove, aliases: []string{"rm", "delete"}, flags: []flagSpec{force}, names: 2},
}

// appGroups are the app commands that have subcommands, with their aliases.
var appGroups = map[string][]string{"secret": {"s", "secrets"}, "volume": {"vl", "volumes"}}

// otherApp are the other app commands by their names and aliases (with
// their group's full name before): meta records nothing of them, and keeps
// their arguments only up to the domain. Among them `app run DOMAIN SERVICE
// CMD [ARGS...]` and `app cmd DOMAIN [SERVICE] CMD [-- ARGS...]` run
// whatever the operator types in a container, secrets included.
var otherApp = []string{
	"backup", "b", "check", "chk", "cmd", "cm", "config", "cfg", "cp", "env", "labels", "lb", "list", "ls", "logs", "l",
	"ps", "p", "restart", "re", "run", "r", "services", "sr", "version", "v",
	"secret list", "secret ls", "volume list", "volume ls",
}

// topLevel are abra's commands besides app, with their aliases: meta keeps
// their names and none of their arguments.
var topLevel = []string{"autocomplete", "ac", "catalogue", "c", "help", "h", "recipe", "r", "server", "s", "upgrade", "u"}

// wordKind is what one word of a command line is to abra.
type wordKind int

const (
	wordArg       wordKind = iota // a positional argument
	wordProgram                   // argv[0]
	wordCommand                   // a command's name: app, secret, insert
	wordFlag                      // flags abra knows for the command (switches with true or false)
	wordFlagValue                 // the same, with a flag's value in the word: --server=X, -sX
	wordValue                     // the value of the flag before
	wordEnd                       // "--": every word after it is an argument
	wordUnsure                    // a word abra would not take, or one already redacted
)

// word is one word of a command line as parse read it.
type word struct {
	kind wordKind
	arg  int // for wordArg: which argument, from 0
}

// flagSet is a flag abra knows, set on the command line to value ("true"
// for a switch given none).
type flagSet struct {
	long, value string
}

// line is a command line as abra reads it.
type line struct {
	words []word
	// app: an `abra app` command; action its full name, as typed for a
	// command meta does not know ("" when the line stops before it), and
	// spec the command when meta knows its every argument.
	app    bool
	action Action
	spec   *appSpec
	flags  []flagSet
	args   []string
}

// names is how many arguments of the line name something harmless.
func (l *line) names() int {
	switch {
	case l.spec != nil && l.spec.name == SecretInsert && l.given() < l.spec.names+1:
		// abra takes DOMAIN NAME VERSION DATA: with a word missing, the
		// secret may stand in any place after the domain (`NAME=v1
		// VALUE`), so only the domain is kept.
		return 1
	case l.spec != nil:
		return l.spec.names
	case l.app:
		return 1 // the domain
	}
	return 0
}

// given counts the line's arguments, a word redacted before counting as
// the argument it was (so that redacting twice gives the same line).
func (l *line) given() int {
	n := len(l.args)
	for _, w := range l.words {
		if w.kind == wordUnsure {
			n++
		}
	}
	return n
}

// parse reads argv as abra does: global flags, then the command's names
// (with global flags among them), then the command's own flags and its
// arguments in any order.
func parse(argv []string) *line {
	l := &line{words: make([]word, len(argv))}
	if len(argv) == 0 {
		return l
	}
	l.words[0] = word{kind: wordProgram}
	flags := globalFlags
	// path are the command's names read so far; named says they are all
	// read, so what follows are its arguments.
	var path []string
	named, ended := false, false
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == record.Redacted:
			l.words[i] = word{kind: wordUnsure}
			continue
		case ended || !strings.HasPrefix(a, "-") || a == "-":
			// an argument, or one of the command's names
		case a == "--":
			l.words[i], ended = word{kind: wordEnd}, true
			continue
		default:
			set, takesNext, ok := readFlag(a, flags)
			if !ok {
				l.words[i] = word{kind: wordUnsure}
				continue
			}
			l.words[i] = word{kind: wordFlag}
			if last := set[len(set)-1]; !takesNext && slices.ContainsFunc(flags, func(f flagSpec) bool { return f.value && f.long == last.long }) {
				l.words[i] = word{kind: wordFlagValue}
			}
			if takesNext && i+1 < len(argv) {
				i++
				l.words[i] = word{kind: wordValue}
				set[len(set)-1].value = argv[i]
			}
			l.flags = append(l.flags, set...)
			continue
		}
		if named || ended {
			l.words[i] = word{kind: wordArg, arg: len(l.args)}
			l.args = append(l.args, a)
			continue
		}
		name, spec, last, ok := command(path, a)
		path = append(path, name)
		if l.app = path[0] == "app"; l.app && len(path) > 1 {
			l.action = Action(strings.Join(path[1:], " "))
		}
		named = last || !ok
		if !ok {
			l.words[i] = word{kind: wordUnsure} // a command abra does not have
			continue
		}
		l.words[i] = word{kind: wordCommand}
		if spec != nil {
			l.spec, flags = spec, append(append([]flagSpec(nil), spec.flags...), globalFlags...)
		}
	}
	return l
}

// command reads a as the next of the command's names after path: its full
// name, for an app command meta knows its spec, and whether it is the
// last name. ok is false for a name abra does not have (its full name is
// then a as typed).
func command(path []string, a string) (name string, spec *appSpec, last, ok bool) {
	switch {
	case len(path) == 0 && (a == "app" || a == "a"):
		return "app", nil, false, true
	case len(path) == 0:
		return a, nil, true, slices.Contains(topLevel, a)
	case len(path) == 1:
		for group, aliases := range appGroups {
			if a == group || slices.Contains(aliases, a) {
				return group, nil, false, true
			}
		}
	}
	group := strings.Join(path[1:], " ")
	for i := range appSpecs {
		s := &appSpecs[i]
		g, n, found := strings.Cut(string(s.name), " ")
		if !found {
			g, n = "", g
		}
		if g == group && (a == n || slices.Contains(s.aliases, a)) {
			return n, s, true, true
		}
	}
	return a, nil, true, slices.Contains(otherApp, strings.TrimSpace(group+" "+a))
}

// readFlag reads the flag word a against the flags the command takes: the
// flags it sets, and whether the last of them takes the next word as its
// value. ok is false when abra would refuse the word.
func readFlag(a string, flags []flagSpec) (set []flagSet, takesNext, ok bool) {
	if long, ok := strings.CutPrefix(a, "--"); ok {
		name, value, hasValue := strings.Cut(long, "=")
		f, known := find(flags, func(f flagSpec) bool { return f.long == name })
		switch {
		case !known:
			return nil, false, false
		case f.value:
			return []flagSet{{long: f.long, value: value}}, !hasValue, true
		case !hasValue:
			value = "true"
		case !isBool(value):
			return nil, false, false
		}
		return []flagSet{{long: f.long, value: value}}, false, true
	}
	shorts := a[1:]
	for j := 0; j < len(shorts); j++ {
		f, known := find(flags, func(f flagSpec) bool { return f.short == shorts[j:j+1] })
		if !known {
			return nil, false, false
		}
		rest := shorts[j+1:]
		if f.value {
			if rest == "" {
				return append(set, flagSet{long: f.long}), true, true
			}
			if len(rest) > 1 && rest[0] == '=' {
				rest = rest[1:]
			}
			return append(set, flagSet{long: f.long, value: rest}), false, true
		}
		if value, ok := strings.CutPrefix(rest, "="); ok {
			if !isBool(value) {
				return nil, false, false
			}
			return append(set, flagSet{long: f.long, value: value}), false, true
		}
		set = append(set, flagSet{long: f.long, value: "true"})
	}
	return set, false, true
}

func isBool(s string) bool {
	_, err := strconv.ParseBool(s)
	return err == nil
}

// find is the flag of flags that match picks.
func find(flags []flagSpec, match func(flagSpec) bool) (flagSpec, bool) {
	if i := slices.IndexFunc(flags, match); i >= 0 {
		return flags[i], true
	}
	return flagSpec{}, false
}

// Dir is abra's directory: $ABRA_DIR, else $HOME/.abra.
func Dir(getenv func(string) string) string {
	if d := getenv("ABRA_DIR"); d != "" {
		return d
	}
	return filepath.Join(getenv("HOME"), ".abra")
}
