package opsync

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// The abra commands that take a secret value on their command line, from
// abra's command definitions (cli/app/secret.go, cli/app/run.go,
// cli/app/cmd.go):
//
//   - `abra app secret insert <domain> <secret> <version> <data>` (alias
//     `abra a s i`): <data> is the value, or with --file/-f the file that
//     holds it; --trim/-t, --chaos/-C are switches;
//   - `abra app run <domain> <service> <cmd> [<args>...]` and
//     `abra app cmd <domain> [<service>] <cmd> [-- <args>...]`: whatever
//     runs in the container, passwords included.
//
// `app secret generate` makes the values and prints them (never on the
// command line), `app new --secrets/--pass` likewise; `server add` takes a
// host, user and port and leaves passwords to ssh. The global switches
// (--debug/-d, --no-input/-n, --offline/-o, --help/-h) come anywhere.
//
// Every form of those lines run through meta exec, with a value of its own:
// the value is in no recorded event, no commit message, no git object of
// the clone or of the bare remote (packed by git gc too), and no file under
// them (meta's cache and journal).
func TestRunLeaksNoSecretValue(t *testing.T) {
	tests := []struct {
		name string
		// args are the words after abra, SECRET standing for the value.
		args []string
		// fails: abra refuses the line (an unknown flag), as it does a
		// value starting with "-" without "--" before it.
		fails bool
		// records: meta records the command (run and cmd change nothing).
		records bool
	}{
		{name: "insert", args: []string{"app", "secret", "insert", domain, "smtp_password", "v3", "SECRET"}, records: true},
		{name: "insert by its aliases", args: []string{"a", "s", "i", domain, "smtp_password", "v3", "SECRET"}, records: true},
		{name: "a value starting with - after --", args: []string{"app", "secret", "insert", domain, "smtp_password", "v3", "--", "-SECRET"}, records: true},
		{name: "a value starting with - without --", args: []string{"app", "secret", "insert", domain, "smtp_password", "v3", "-SECRET"}, fails: true, records: true},
		{name: "a value starting with -- without --", args: []string{"app", "secret", "insert", domain, "smtp_password", "v3", "--SECRET"}, fails: true, records: true},
		{name: "a value like a flag with a value", args: []string{"app", "secret", "insert", domain, "smtp_password", "v3", "--trim=SECRET"}, fails: true, records: true},
		{name: "-- before every argument", args: []string{"app", "secret", "insert", "--", domain, "smtp_password", "v3", "-SECRET"}, records: true},
		{name: "-- after the domain", args: []string{"app", "secret", "insert", domain, "--", "smtp_password", "v3", "SECRET"}, records: true},
		{name: "flags before, after and bundled", args: []string{"-d", "app", "-n", "secret", "insert", "-tC", domain, "smtp_password", "--chaos=false", "v3", "SECRET", "--trim"}, records: true},
		{name: "a file", args: []string{"app", "secret", "insert", "-f", domain, "smtp_password", "v3", "/home/alice/SECRET.txt"}, records: true},
		{name: "a value with = in it", args: []string{"app", "secret", "insert", domain, "smtp_password", "v3", "KEY=SECRET"}, records: true},
		{name: "a value of several words", args: []string{"app", "secret", "insert", domain, "smtp_password", "v3", "correct", "horse", "SECRET"}, records: true},
		{name: "an unknown flag before the value", args: []string{"app", "secret", "insert", domain, "--password", "smtp_password", "v3", "SECRET"}, fails: true, records: true},
		{name: "run", args: []string{"app", "run", domain, "app", "--", "psql", "-c", "ALTER ROLE x PASSWORD 'SECRET'"}},
		{name: "cmd", args: []string{"app", "cmd", domain, "app", "set_admin_pass", "--", "SECRET"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			w.envFile(s1, domain, "1.0.0")
			w.mustRun(0, "app", "deploy", domain)
			value := fmt.Sprintf("sw0rdfish-%d-%s", i, secretValue)
			args := make([]string, len(tt.args))
			for j, a := range tt.args {
				args[j] = strings.ReplaceAll(a, "SECRET", value)
			}
			code := 0
			if tt.fails {
				code = 1
				w.order("exit", "1")
			}
			res := w.mustRun(code, args...)
			if got := len(res.Recorded) > 0; got != tt.records {
				t.Fatalf("recorded %d events, want some: %v", len(res.Recorded), tt.records)
			}
			for _, ev := range res.Recorded {
				if !slices.Contains(ev.GetCommand(), record.Redacted) {
					t.Errorf("the recorded command %q redacts nothing", ev.GetCommand())
				}
				if strings.Contains(strings.Join(ev.GetCommand(), " "), "sw0rdfish") {
					t.Errorf("the recorded command %q holds the value", ev.GetCommand())
				}
			}
			for _, dir := range []string{w.log.Root(), w.remote} {
				git(t, dir, "gc", "-q", "--prune=now")
			}
			assertNowhere(t, value, domain, w.log.Root(), w.remote)
			if messages := git(t, w.remote, "log", "--format=%B", "main"); strings.Contains(messages, "sw0rdfish") {
				t.Errorf("a commit message holds the value:\n%s", messages)
			}
		})
	}
}
