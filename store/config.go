package store

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
)

// ConfigFile is the file at the root of a log repository that marks it as
// one and holds its shared settings. It is committed.
const ConfigFile = "meta.yaml"

// ConfigVersion is the meta.yaml layout this meta writes.
const ConfigVersion = 1

// Config is what meta.yaml says.
type Config struct {
	// Version of the meta.yaml layout.
	Version int `yaml:"version"`
	// Project and Env are the defaults for an app's first event.
	Project string `yaml:"project,omitempty"`
	Env     string `yaml:"env,omitempty"`
	// SyncCooldown is how long reads trust the last fetch, as a Go
	// duration ("60s", "5m"); default 60s.
	SyncCooldown string `yaml:"sync_cooldown,omitempty"`
	// Webhooks are endpoints `meta serve` sends every new event to.
	Webhooks []WebhookConfig `yaml:"webhooks,omitempty"`
	// Operators are the people whose age keys env files are encrypted to.
	// `meta operator add/rm` edit this list.
	Operators []Operator `yaml:"operators,omitempty"`
	// Access narrows who may read which project's or env's env files; a
	// project/env no rule names is readable by every operator.
	Access []AccessRule `yaml:"access,omitempty"`
	// Servers maps an abra server (the directory under $ABRA_DIR/servers)
	// to the log's "env" or "project/env" for `meta exec`; a server not
	// named here is an env of its own name in the default project.
	Servers map[string]string `yaml:"servers,omitempty"`
}

// PlaceServer is the project and env the apps of an abra server belong
// to, as Servers says; project is empty when neither Servers nor the
// default project names one.
func (c Config) PlaceServer(server string) (project, env string) {
	to, ok := c.Servers[server]
	if !ok {
		return c.Project, server
	}
	if project, env = splitPlace(to); project == "" {
		project = c.Project
	}
	return project, env
}

// splitPlace reads a servers: value, "env" or "project/env".
func splitPlace(to string) (project, env string) {
	if p, e, found := strings.Cut(to, "/"); found {
		return p, e
	}
	return "", to
}

// Operator is one operator and the age recipient (public key) their env
// files are encrypted to.
type Operator struct {
	Name string `yaml:"name"`
	Age  string `yaml:"age"`
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

// WebhookConfig is one outgoing webhook endpoint. Its signing secret is
// not here (meta.yaml is committed): SecretEnv names the environment
// variable of the hub that holds it, as "whsec_<base64>".
type WebhookConfig struct {
	Name      string `yaml:"name"`
	URL       string `yaml:"url"`
	SecretEnv string `yaml:"secret_env"`
}

// ParseConfig reads and checks meta.yaml's content. Keys it does not know,
// written by a newer meta, are ignored.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := yaml.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	if c.Version < 1 {
		return Config{}, fmt.Errorf("%s: version must be 1 or more, got %d", ConfigFile, c.Version)
	}
	if c.Project != "" {
		if err := projects.ValidateProject(c.Project); err != nil {
			return Config{}, fmt.Errorf("%s: project: %w", ConfigFile, err)
		}
	}
	if c.Env != "" {
		if err := projects.ValidateEnv(c.Env); err != nil {
			return Config{}, fmt.Errorf("%s: env: %w", ConfigFile, err)
		}
	}
	seen := map[string]bool{}
	for i, w := range c.Webhooks {
		if err := validWebhookName(w.Name); err != nil {
			return Config{}, fmt.Errorf("%s: webhooks[%d]: %w", ConfigFile, i, err)
		}
		if seen[w.Name] {
			return Config{}, fmt.Errorf("%s: webhooks: two are named %q", ConfigFile, w.Name)
		}
		seen[w.Name] = true
		if u, err := url.Parse(w.URL); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			return Config{}, fmt.Errorf("%s: webhook %s: url %q is not an http(s) URL", ConfigFile, w.Name, w.URL)
		}
		if w.SecretEnv == "" {
			return Config{}, fmt.Errorf("%s: webhook %s: secret_env must name the variable holding its signing secret", ConfigFile, w.Name)
		}
	}
	if err := c.validateOperators(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	for server, to := range c.Servers {
		p, e := splitPlace(to)
		if p != "" {
			if err := projects.ValidateProject(p); err != nil {
				return Config{}, fmt.Errorf("%s: servers: %s: %w", ConfigFile, server, err)
			}
		}
		if err := projects.ValidateEnv(e); err != nil {
			return Config{}, fmt.Errorf("%s: servers: %s: %w", ConfigFile, server, err)
		}
	}
	if c.SyncCooldown != "" {
		if d, err := time.ParseDuration(c.SyncCooldown); err != nil || d < 0 {
			return Config{}, fmt.Errorf("%s: sync_cooldown %q is not a duration like 60s or 5m", ConfigFile, c.SyncCooldown)
		}
	}
	return c, nil
}

// Marshal renders c as meta.yaml, with a comment for people who find it.
func (c Config) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("# This repository is a meta operator log: see `meta --help`.\n")
	b.WriteString("# project and env are the defaults for an app's first event.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.Encode(c)
	enc.Close()
	return b.Bytes()
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
	case !strings.HasPrefix(r, "age1") || strings.ContainsAny(r, " \t\n"):
		return fmt.Errorf("age recipient %q: expected the age1... public key age-keygen prints", r)
	}
	return nil
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

func validWebhookName(name string) error {
	if name == "" {
		return fmt.Errorf("a webhook needs a name")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("webhook name %q: only lower-case letters, digits, '-' and '_'", name)
		}
	}
	return nil
}

// Rewrite renders c's operators and access rules into old, the current
// meta.yaml, keeping everything else there as people wrote it, comments
// included.
func (c Config) Rewrite(old []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(old, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a mapping", ConfigFile)
	}
	top := doc.Content[0]
	set := func(key string, value any, empty bool) error {
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value == key {
				if empty {
					top.Content = append(top.Content[:i], top.Content[i+2:]...)
					return nil
				}
				return top.Content[i+1].Encode(value)
			}
		}
		if empty {
			return nil
		}
		var v yaml.Node
		if err := v.Encode(value); err != nil {
			return err
		}
		top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &v)
		return nil
	}
	if err := set("operators", c.Operators, len(c.Operators) == 0); err != nil {
		return nil, err
	}
	if err := set("access", c.Access, len(c.Access) == 0); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	enc.Close()
	if _, err := ParseConfig(b.Bytes()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WithOperator is c with operator o added; ErrExists when the name or the
// key is taken.
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
