// Package abra understands what meta needs of Co-op Cloud's abra: which app
// command a command line runs and on which app, where abra keeps an app's
// env file, which recipe version that file says is deployed, and the stack
// name abra gives an app in Docker Swarm. It runs nothing and records
// nothing.
package abra

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
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

// aliases maps abra's short command names to full ones.
var aliases = map[string]string{
	"d": "deploy", "up": "upgrade", "rl": "rollback", "un": "undeploy",
	"m": "move", "mv": "move", "n": "new", "rm": "remove", "delete": "remove",
	"rs": "restore", "s": "secret", "secrets": "secret", "vl": "volume", "volumes": "volume",
}

// subAliases are the short names of secret and volume subcommands.
var subAliases = map[string]string{"g": "generate", "gen": "generate", "i": "insert", "rm": "remove", "delete": "remove"}

// valueFlags are the flags of app commands that take a value, by command:
// the rest are switches. Knowing them is how the domain is found among the
// arguments wherever the flags are put.
var valueFlags = map[Action][]string{
	New:     {"-s", "--server", "-D", "--domain"},
	Restore: {"-s", "--snapshot", "-t", "--target"},
}

// ParseCommand reads argv, the whole command line from the abra executable
// on (argv[0] is abra itself). Commands other than `abra app ...` give
// ErrNotApp, and are run without meta's help.
func ParseCommand(argv []string) (Command, error) {
	var words, flags []string
	for i := 1; i < len(argv); i++ {
		words = append(words, argv[i])
	}
	// Global switches may come before "app".
	for len(words) > 0 && strings.HasPrefix(words[0], "-") {
		flags = append(flags, words[0])
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "app" && words[0] != "a" {
		return Command{}, fmt.Errorf("%w: %s", ErrNotApp, strings.Join(argv, " "))
	}
	name := full(aliases, words[1])
	rest := words[2:]
	if name == "secret" || name == "volume" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return Command{Action: Action(name)}, nil
		}
		name += " " + full(subAliases, rest[0])
		rest = rest[1:]
	}
	c := Command{Action: Action(name)}
	takesValue := map[string]bool{}
	for _, f := range valueFlags[c.Action] {
		takesValue[f] = true
	}
	var positional []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flag, value, hasValue := strings.Cut(a, "=")
		if takesValue[flag] && !hasValue && i+1 < len(rest) {
			value, hasValue = rest[i+1], true
			i++
		}
		c.flag(flag, value)
	}
	if c.Action == New {
		c.Args = positional
		return c, nil
	}
	if len(positional) > 0 {
		c.Domain = positional[0]
	}
	if len(positional) > 1 {
		c.Args = positional[1:]
	}
	return c, nil
}

// flag notes what meta needs of one flag.
func (c *Command) flag(flag, value string) {
	switch flag {
	case "-C", "--chaos":
		c.Chaos = true
	case "-S", "--secrets":
		c.Secrets = true
	case "-a", "--all":
		c.All = true
	case "-s", "--server":
		if c.Action == New {
			c.Server = value
		} else if c.Action == Restore {
			c.Snapshot = value
		}
	case "--snapshot":
		c.Snapshot = value
	case "-D", "--domain":
		if c.Action == New {
			c.Domain = value
		}
	}
}

func full(names map[string]string, name string) string {
	if f, ok := names[name]; ok {
		return f
	}
	return name
}

// Dir is abra's directory: $ABRA_DIR, else $HOME/.abra.
func Dir(getenv func(string) string) string {
	if d := getenv("ABRA_DIR"); d != "" {
		return d
	}
	return filepath.Join(getenv("HOME"), ".abra")
}
