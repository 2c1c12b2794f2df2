package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// ErrOperator: an operator or access change names an operator, key or
// scope that is not there, or is there already.
var ErrOperator = errors.New("operator list")

// recipientChars are the characters of an age recipient after its age1
// prefix: bech32 is lower-case letters and digits.
const recipientChars = "abcdefghijklmnopqrstuvwxyz0123456789"

// Operator is one operator: the age recipient (public key) their env
// files are encrypted to, and the SSH public key their commits are signed
// with.
type Operator struct {
	Name string `yaml:"name"`
	Age  string `yaml:"age"`
	// SSH is the operator's SSH public key as one authorized_keys line,
	// "ssh-ed25519 AAAA... comment", empty for none. An older meta (of
	// meta.yaml version 1) ignores it; see Version for why it needs no
	// version of its own.
	SSH string `yaml:"ssh,omitempty"`
}

// AccessRule gives the operators it names, and only them, access to the
// env files of Scope: "project/env", "project/*" (every env of a project)
// or "*" (every project). The most specific rule that matches wins.
type AccessRule struct {
	Scope     string   `yaml:"scope"`
	Operators []string `yaml:"operators"`
}

// Readers are the operators who may read the env files of project/env, in
// meta.yaml's order, and the access rule that decided it ("" for the
// default: everyone).
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

// Stale says a sealed env file of project/env is encrypted to other age
// recipients than the operators c gives access to: `meta env rekey` would
// re-encrypt it.
func (c Config) Stale(project, env string, file []byte) bool {
	readers, _ := c.Readers(project, env)
	want := make([]string, len(readers))
	for i, o := range readers {
		want[i] = o.Age
	}
	sort.Strings(want)
	return !slices.Equal(sealed.Recipients(file), want)
}

// Operator returns the operator called name.
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
		if o.SSH == "" {
			continue
		}
		k, err := ValidSSHKey(o.SSH)
		if err != nil {
			return fmt.Errorf("operator %s: %w", o.Name, err)
		}
		id := "ssh:" + string(k.Marshal())
		if other, ok := keys[id]; ok {
			return fmt.Errorf("operators %s and %s have the same ssh key (%s)", other, o.Name, signing.Fingerprint(k))
		}
		keys[id] = o.Name
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

// ValidOperatorName checks an operator's name: what people type after
// `meta operator rm`.
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

// ValidRecipient catches what is plainly not an age recipient (a secret key
// above all); meta-seal parses recipients for real when it encrypts.
func ValidRecipient(r string) error {
	switch {
	case strings.HasPrefix(r, "AGE-SECRET-KEY-"):
		return fmt.Errorf("that is an age secret key; give the public key (age-keygen -y FILE prints it), and keep the secret one to yourself")
	case !strings.HasPrefix(r, "age1") || strings.Trim(r[len("age1"):], recipientChars) != "" || len(r) < len("age1")+6:
		return fmt.Errorf("age recipient %q: expected the age1... public key age-keygen prints", r)
	}
	return nil
}

// ValidSSHKey parses an operator's SSH public key, one authorized_keys
// line without options, and says what is wrong with anything else: a
// private key above all.
func ValidSSHKey(key string) (ssh.PublicKey, error) {
	t := strings.TrimSpace(key)
	switch {
	case strings.Contains(t, "PRIVATE KEY"):
		return nil, errors.New("ssh key: that is a private key; give the public one (the .pub file beside it, or what `ssh-keygen -y -f KEYFILE` prints), and keep the private one to yourself")
	case strings.HasPrefix(t, "age1"), strings.HasPrefix(t, "AGE-SECRET-KEY-"):
		return nil, errors.New("ssh key: that is an age key; --age takes it, --ssh the operator's ssh public key (\"ssh-ed25519 AAAA...\")")
	}
	k, err := signing.ParseKey(t)
	if err != nil {
		return nil, fmt.Errorf("ssh key %q: %w", abbreviate(t), err)
	}
	return k, nil
}

// abbreviate shortens what someone gave for an error message that names
// it.
func abbreviate(s string) string {
	if s, _, cut := strings.Cut(s, "\n"); cut {
		return abbreviate(s) + "..."
	}
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ValidScope checks an access rule's scope: project/env, project/* or *.
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

// WithOperator is c with operator o added; ErrOperator when the name, the
// age key or the SSH key is taken.
func (c Config) WithOperator(o Operator) (Config, error) {
	if err := ValidOperatorName(o.Name); err != nil {
		return c, err
	}
	if err := ValidRecipient(o.Age); err != nil {
		return c, err
	}
	if o.SSH != "" {
		k, err := ValidSSHKey(o.SSH)
		if err != nil {
			return c, err
		}
		if have, ok := c.OperatorByKey(k); ok {
			return c, fmt.Errorf("%w: operator %s has that ssh key already (%s)", ErrOperator, have.Name, signing.Fingerprint(k))
		}
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

// WithOperatorSSH is c with the SSH public key of operator name set to key,
// replacing the one they had; ErrOperator when no operator is called name
// or another one has that key.
func (c Config) WithOperatorSSH(name, key string) (Config, error) {
	if _, ok := c.Operator(name); !ok {
		return c, fmt.Errorf("%w: no operator is named %q (meta operator ls lists them)", ErrOperator, name)
	}
	k, err := ValidSSHKey(key)
	if err != nil {
		return c, err
	}
	if have, ok := c.OperatorByKey(k); ok && have.Name != name {
		return c, fmt.Errorf("%w: operator %s has that ssh key already (%s)", ErrOperator, have.Name, signing.Fingerprint(k))
	}
	ops := append([]Operator(nil), c.Operators...)
	for i := range ops {
		if ops[i].Name == name {
			ops[i].SSH = strings.TrimSpace(key)
		}
	}
	c.Operators = ops
	return c, nil
}

// WithoutOperator is c with operator name removed, from the operators and
// from every access rule; it refuses to leave a rule with nobody in it.
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

// WithAccess is c with the rule for scope set to operators.
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

// WithoutAccess is c without the rule for scope: its env files fall back
// to the next broader rule, or to every operator.
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

// OperatorByKey returns the operator whose SSH public key is key: who
// signed a commit.
func (c Config) OperatorByKey(key ssh.PublicKey) (Operator, bool) {
	for _, o := range c.Operators {
		if o.SSH == "" {
			continue
		}
		if k, err := signing.ParseKey(o.SSH); err == nil && signing.Same(k, key) {
			return o, true
		}
	}
	return Operator{}, false
}

// Signers are the operators' SSH keys, for an allowed-signers file: each
// operator with a key, principal their name, in meta.yaml's order.
func (c Config) Signers() []signing.Allowed {
	var out []signing.Allowed
	for _, o := range c.Operators {
		if k, err := signing.ParseKey(o.SSH); err == nil {
			out = append(out, signing.Allowed{Principal: o.Name, Key: k})
		}
	}
	return out
}
