package config

import (
	"errors"
	"strings"
	"testing"
)

const (
	ageA = "age1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	ageB = "age1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	ageC = "age1cccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

func TestReadersMostSpecificRuleWins(t *testing.T) {
	c := Config{
		Operators: []Operator{{Name: "alice", Age: ageA}, {Name: "bob", Age: ageB}, {Name: "carol", Age: ageC}},
		Access: []AccessRule{
			{Scope: "*", Operators: []string{"alice", "bob"}},
			{Scope: "coop/*", Operators: []string{"bob"}},
			{Scope: "coop/prod", Operators: []string{"carol"}},
		},
	}
	tests := []struct{ project, env, want, rule string }{
		{"coop", "prod", "carol", "coop/prod"},
		{"coop", "staging", "bob", "coop/*"},
		{"other", "prod", "alice,bob", "*"},
	}
	for _, tt := range tests {
		got, rule := c.Readers(tt.project, tt.env)
		var names []string
		for _, o := range got {
			names = append(names, o.Name)
		}
		if strings.Join(names, ",") != tt.want || rule != tt.rule {
			t.Errorf("Readers(%s/%s) = %v by %q, want %s by %q", tt.project, tt.env, names, rule, tt.want, tt.rule)
		}
	}
	c.Access = nil
	if got, rule := c.Readers("coop", "prod"); len(got) != 3 || rule != "" {
		t.Errorf("without rules every operator reads: %v %q", got, rule)
	}
}

func TestOperatorChangesKeepMetaYAMLAsWritten(t *testing.T) {
	old := []byte("# Our log. Ask alice before changing webhooks.\nversion: 1\nproject: coop # the collective\nenv: prod\n")
	c, err := Parse(old)
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.WithOperator(Operator{Name: "alice", Age: ageA})
	if err != nil {
		t.Fatal(err)
	}
	c, _ = c.WithOperator(Operator{Name: "bob", Age: ageB})
	if _, err := c.WithOperator(Operator{Name: "bob", Age: ageC}); !errors.Is(err, ErrOperator) {
		t.Errorf("a second bob: %v", err)
	}
	if _, err := c.WithOperator(Operator{Name: "carol", Age: ageA}); !errors.Is(err, ErrOperator) {
		t.Errorf("alice's key for carol: %v", err)
	}
	c, err = c.WithAccess("coop/prod", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WithoutOperator("alice"); !errors.Is(err, ErrOperator) {
		t.Errorf("removing the last reader of coop/prod: %v", err)
	}
	if _, err := c.WithAccess("coop/prod", []string{"nobody"}); !errors.Is(err, ErrOperator) {
		t.Errorf("access for an unknown operator: %v", err)
	}
	out, err := c.Rewrite(old)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Our log. Ask alice before changing webhooks.", "project: coop # the collective", "name: bob", "scope: coop/prod"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("meta.yaml lost %q:\n%s", want, out)
		}
	}
	back, err := Parse(out)
	if err != nil || len(back.Operators) != 2 || len(back.Access) != 1 {
		t.Fatalf("re-read: %+v, %v", back, err)
	}
	back, _ = back.WithoutAccess("coop/prod")
	back, err = back.WithoutOperator("bob")
	if err != nil {
		t.Fatal(err)
	}
	out, _ = back.Rewrite(out)
	if strings.Contains(string(out), "access") || strings.Contains(string(out), "bob") {
		t.Errorf("removed entries remain:\n%s", out)
	}
}

func TestConfigRefusesBadOperators(t *testing.T) {
	tests := map[string]string{
		"secret key":       "version: 1\noperators:\n  - {name: a, age: AGE-SECRET-KEY-1XYZ}\n",
		"not a recipient":  "version: 1\noperators:\n  - {name: a, age: ssh-ed25519 AAAA}\n",
		"same name":        "version: 1\noperators:\n  - {name: a, age: " + ageA + "}\n  - {name: a, age: " + ageB + "}\n",
		"unknown operator": "version: 1\noperators:\n  - {name: a, age: " + ageA + "}\naccess:\n  - {scope: coop/prod, operators: [b]}\n",
		"empty rule":       "version: 1\noperators:\n  - {name: a, age: " + ageA + "}\naccess:\n  - {scope: coop/prod, operators: []}\n",
		"bad scope":        "version: 1\noperators:\n  - {name: a, age: " + ageA + "}\naccess:\n  - {scope: coop, operators: [a]}\n",
	}
	for name, yaml := range tests {
		if _, err := Parse([]byte(yaml)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A layout version this meta does not know is ErrNewer, never read as if
// it were this meta's; versions below 1 are plain mistakes.
func TestParseVersions(t *testing.T) {
	tests := []struct {
		yaml  string
		newer bool
		bad   string
	}{
		{yaml: "version: 1\n"},
		{yaml: "version: 2\n"},
		{yaml: "version: 3\n", newer: true, bad: "meta.yaml is version 3, and this meta knows versions up to 2: upgrade meta"},
		{yaml: "version: 2\nsignatures: required\n"},
		{yaml: "version: 2\nsignatures: optional\n"},
		{yaml: "version: 1\nsignatures: optional\n"},
		{yaml: "version: 2\nsignatures: required\nsignatures_since: 0123456789abcdef0123456789abcdef01234567\n"},
		// An older meta ignores keys it does not know: requiring
		// signatures at version 1 would be believed by none of them.
		{yaml: "version: 1\nsignatures: required\n", bad: "signatures: required needs version: 2"},
		{yaml: "version: 2\nsignatures: yes\n", bad: `signatures: "yes" is not "required" or "optional"`},
		{yaml: "version: 2\nsignatures: required\nsignatures_since: HEAD~3\n", bad: "signatures_since: \"HEAD~3\" is not a full commit id"},
		{yaml: "version: 99\nsignatures: required\n", newer: true, bad: "version 99"},
		{yaml: "version: 0\n", bad: "version must be 1 or more"},
		{yaml: "project: coop\n", bad: "version must be 1 or more, got 0"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml))
		switch {
		case tt.bad == "" && err != nil:
			t.Errorf("Parse(%q): %v", tt.yaml, err)
		case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad)):
			t.Errorf("Parse(%q) = %v, want an error saying %q", tt.yaml, err, tt.bad)
		case errors.Is(err, ErrNewer) != tt.newer:
			t.Errorf("Parse(%q) = %v: ErrNewer is %v, want %v", tt.yaml, err, errors.Is(err, ErrNewer), tt.newer)
		}
	}
}
