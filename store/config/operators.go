package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"golang.org/x/crypto/ssh"

	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// ErrOperator: an operator or access change names an operator, key or
// recipientChars are the characters of an age recipient after its age1
// prefix: bech32 is lower-case letters and digits.
const recipientChars = "abcdefghijklmnopqrstuvwxyz0123456789"

// scope that is not there, or is there already.
var ErrOperator = errors.New("operator list")

type Operator struct {
	Name string `yaml:"name"`
	Age  string `yaml:"age"`
	// SSH is the public key the operator signs commits with, one
	// authorized_keys line ("ssh-ed25519 AAAA... comment"); empty for an
	// operator who does not sign.
	SSH string `yaml:"ssh,omitempty"`
}

// OperatorByKey returns the operator whose ssh key is k.
func (c Config) OperatorByKey(k ssh.PublicKey) (Operator, bool) {
	for _, o := range c.Operators {
		if o.SSH == "" {
			continue
		}
		if ok, err := signing.ParseKey(o.SSH); err == nil && signing.Same(ok, k) {
			return o, true
		}
	}
	return Operator{}, false
}

type AccessRule struct {
	Scope     string   `yaml:"scope"`
	Operators []string `yaml:"operators"`
}

func (c Config) Readers(project, env string) ([]Operator, string) {
	rule, best := -1, 0
	for i, r := range c.Access {
		p, e, _ := strings.Cut(r.Scope, "/")
		rank := 0
		switch {
		case p == project && e == env:
			rank = 3
		case p == project && e == "*":
			rank = 2
		case p == "*":
			rank = 1
		}
		if rank > best {
			rule, best = i, rank
		}
	}
	if rule < 0 {
		return c.Operators, ""
	}
	allowed := map[string]bool{}
	for _, n := range c.Access[rule].Operators {
		allowed[n] = true
	}
	var out []Operator
	for _, o := range c.Operators {
		if allowed[o.Name] {
			out = append(out, o)
		}
	}
	return out, c.Access[rule].Scope
}

func (c Config) Stale(project, env string, file []byte) bool {
	readers, _ := c.Readers(project, env)
	want := make([]string, len(readers))
	for i, o := range readers {
		want[i] = o.Age
	}
	sort.Strings(want)
	return !slices.Equal(sealed.Recipients(file), want)
}

func (c Config) Operator(name string) (Operator, bool) {
	for _, o := range c.Operators {
		if o.Name == name {
			return o, true
		}
	}
	return Operator{}, false
}

func (c Config) validateOperators() error {
	names, keys := map[string]bool{}, map[string]string{}
	for i, o := range c.Operators {
		if err := ValidOperatorName(o.Name); err != nil {
			return fmt.Errorf("operators[%d]: %w", i, err)
		}
		if names[o.Name] {
			return fmt.Errorf("operators: two are named %q", o.Name)
		}
		names[o.Name] = true
		if err := ValidRecipient(o.Age); err != nil {
			return fmt.Errorf("operator %s: %w", o.Name, err)
		}
		if other, ok := keys[o.Age]; ok {
			return fmt.Errorf("operators %s and %s have the same age key", other, o.Name)
		}
		keys[o.Age] = o.Name
	}
	scopes := map[string]bool{}
	for i, r := range c.Access {
		if err := ValidScope(r.Scope); err != nil {
			return fmt.Errorf("access[%d]: %w", i, err)
		}
		if scopes[r.Scope] {
			return fmt.Errorf("access: two rules for %s", r.Scope)
		}
		scopes[r.Scope] = true
		if len(r.Operators) == 0 {
			return fmt.Errorf("access %s: names no operators, so nobody could read its env files", r.Scope)
		}
		for _, n := range r.Operators {
			if !names[n] {
				return fmt.Errorf("access %s: no operator is named %q (meta operator ls lists them)", r.Scope, n)
			}
		}
	}
	return nil
}

func ValidOperatorName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("operator name %q: 1 to 64 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("operator name %q: only lower-case letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

func ValidRecipient(r string) error {
	switch {
	case strings.HasPrefix(r, "AGE-SECRET-KEY-"):
		return fmt.Errorf("that is an age secret key; give the public key (age-keygen -y FILE prints it), and keep the secret one to yourself")
	case !strings.HasPrefix(r, "age1") || strings.Trim(r[len("age1"):], recipientChars) != "" || len(r) < len("age1")+6:
		return fmt.Errorf("age recipient %q: expected the age1... public key age-keygen prints", r)
	}
	return nil
}

func ValidScope(scope string) error {
	if scope == "*" {
		return nil
	}
	p, e, ok := strings.Cut(scope, "/")
	if !ok {
		return fmt.Errorf("scope %q: expected project/env, project/* or *", scope)
	}
	if err := projects.ValidateProject(p); err != nil {
		return fmt.Errorf("scope %q: %w", scope, err)
	}
	if e != "*" {
		if err := projects.ValidateEnv(e); err != nil {
			return fmt.Errorf("scope %q: %w", scope, err)
		}
	}
	return nil
}

func (c Config) WithOperator(o Operator) (Config, error) {
	if err := ValidOperatorName(o.Name); err != nil {
		return c, err
	}
	if err := ValidRecipient(o.Age); err != nil {
		return c, err
	}
	for _, have := range c.Operators {
		if have.Name == o.Name {
			return c, fmt.Errorf("%w: operator %s exists already (age key %s)", ErrOperator, o.Name, have.Age)
		}
		if have.Age == o.Age {
			return c, fmt.Errorf("%w: operator %s has that age key already", ErrOperator, have.Name)
		}
	}
	c.Operators = append(append([]Operator(nil), c.Operators...), o)
	return c, nil
}

func (c Config) WithoutOperator(name string) (Config, error) {
	if _, ok := c.Operator(name); !ok {
		return c, fmt.Errorf("%w: no operator is named %q (meta operator ls lists them)", ErrOperator, name)
	}
	var ops []Operator
	for _, o := range c.Operators {
		if o.Name != name {
			ops = append(ops, o)
		}
	}
	var rules []AccessRule
	for _, r := range c.Access {
		var names []string
		for _, n := range r.Operators {
			if n != name {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return c, fmt.Errorf("%w: %s is the only operator with access to %s; give someone else access first (meta access set %s NAME...)", ErrOperator, name, r.Scope, r.Scope)
		}
		rules = append(rules, AccessRule{Scope: r.Scope, Operators: names})
	}
	c.Operators, c.Access = ops, rules
	return c, nil
}

func (c Config) WithAccess(scope string, operators []string) (Config, error) {
	if err := ValidScope(scope); err != nil {
		return c, err
	}
	if len(operators) == 0 {
		return c, fmt.Errorf("%w: access %s: name at least one operator", ErrOperator, scope)
	}
	for _, n := range operators {
		if _, ok := c.Operator(n); !ok {
			return c, fmt.Errorf("%w: no operator is named %q (meta operator ls lists them)", ErrOperator, n)
		}
	}
	rules := []AccessRule{}
	replaced := false
	for _, r := range c.Access {
		if r.Scope == scope {
			r = AccessRule{Scope: scope, Operators: operators}
			replaced = true
		}
		rules = append(rules, r)
	}
	if !replaced {
		rules = append(rules, AccessRule{Scope: scope, Operators: operators})
	}
	c.Access = rules
	return c, nil
}

func (c Config) WithoutAccess(scope string) (Config, error) {
	var rules []AccessRule
	for _, r := range c.Access {
		if r.Scope != scope {
			rules = append(rules, r)
		}
	}
	if len(rules) == len(c.Access) {
		return c, fmt.Errorf("%w: no access rule for %s (meta access ls lists them)", ErrOperator, scope)
	}
	c.Access = rules
	return c, nil
}

// OperatorByAge returns the operator whose age recipient is key: how meta
// names the people a file is encrypted to.
func (c Config) OperatorByAge(key string) (Operator, bool) {
	for _, o := range c.Operators {
		if o.Age == key {
			return o, true
		}
	}
	return Operator{}, false
}
