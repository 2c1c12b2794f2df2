package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// pflag reads a `quoted` word in a flag's usage as the name of its value:
// "push later with `meta sync`" printed as "--offline meta sync". No
// usage may hold a backtick.
func TestFlagUsagesHoldNoBackticks(t *testing.T) {
	root := newRoot(&env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage %q holds a backtick", c.CommandPath(), f.Name, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestPositionals(t *testing.T) {
	tests := []struct {
		use      string
		required []string
		optional int
		variadic bool
	}{
		{"head DOMAIN", []string{"DOMAIN"}, 0, false},
		{"get DOMAIN [KEY]", []string{"DOMAIN"}, 1, false},
		{"ack COMMIT...", []string{"COMMIT"}, 0, true},
		{"rekey [DOMAIN...]", nil, 1, true},
		{"add NAME --age RECIPIENT", []string{"NAME"}, 0, false},
		{"start -m SUMMARY", nil, 0, false},
		{"observe DOMAIN (--inspect FILE | --docker)", []string{"DOMAIN"}, 0, false},
		{"exec [flags] -- abra app COMMAND DOMAIN [ARGS...]", []string{"abra", "app", "COMMAND", "DOMAIN"}, 1, true},
		{"ls", nil, 0, false},
	}
	for _, tt := range tests {
		req, opt, vari := positionals(tt.use)
		if strings.Join(req, " ") != strings.Join(tt.required, " ") || opt != tt.optional || vari != tt.variadic {
			t.Errorf("positionals(%q) = %q, %d, %v; want %q, %d, %v", tt.use, req, opt, vari, tt.required, tt.optional, tt.variadic)
		}
	}
}
