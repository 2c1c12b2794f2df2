// Package config is meta.yaml: the file at the root of a log repository that
// marks it as one and holds what its operators share: defaults for new apps,
// the sync cooldown, webhooks, the operators and their age keys, access
// rules and the abra servers' places. It parses, checks and rewrites the
// file (keeping what people wrote in it, comments included) and answers the
// questions its rules decide: who may read an env, where a server's apps go.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"git.coopcloud.tech/coop-cloud/meta/projects"
)

// File is the file at the root of a log repository that marks it as one
// and holds its shared settings. It is committed.
const File = "meta.yaml"

// Version is the newest meta.yaml layout this meta reads. A log starts at
// version 1 (Initial), and moves to 2 only when it needs to: a meta.yaml
// that requires signatures says version 2, so that a meta that cannot
// check signatures refuses it (ErrNewer) instead of reading it as version 1
// and believing every commit.
//
//	1: branch, project, env, sync_cooldown, webhooks, operators, access, servers
//	2: signatures, signatures_since
//	3: servers: values may be mappings (project, env, docker_host,
//	   docker_cert_path), so that the hub can watch each server's Engine
//	4: the log holds recipes' logs (projects/_recipes/: releases,
//	   channels), which a meta that does not know them would take for
//	   junk; meta writes it with the first record of one (WithRecipes)
//
// Operators' ssh keys need no version: a meta that knows none ignores
// them and believes every commit anyway, as it always did. What it may do
// is drop them, rewriting the operator list (`meta operator add` there
// writes its own Operator back); that takes trust away, never adds it, and
// a log that relies on the keys requires signatures, which is version 2.
const Version = 4

// RecipesVersion is the meta.yaml version a log with recipes' logs has.
const RecipesVersion = 4

// Initial is the version a new log's meta.yaml is written at.
const Initial = 1

// The trust policies meta.yaml's signatures: may name.
const (
	// SignaturesRequired: every commit must be signed by an operator's
	// key, as the operator list stood at its parent.
	SignaturesRequired = "required"
	// SignaturesOptional: signatures are checked and shown, never
	// required. The default.
	SignaturesOptional = "optional"
)

// DefaultCooldown is how long reads trust the last fetch when meta.yaml
// does not say.
const DefaultCooldown = 60 * time.Second

// Config is what meta.yaml says.
type Config struct {
	// Version of the meta.yaml layout.
	Version int `yaml:"version"`
	// Branch is the git branch the log lives on, recorded when the log
	// starts; every clone follows it. Empty in logs started before it was
	// recorded: the branch the clone has checked out.
	Branch string `yaml:"branch,omitempty"`
	// Project and Env are the defaults for an app's first event.
	Project string `yaml:"project,omitempty"`
	Env     string `yaml:"env,omitempty"`
	// SyncCooldown is how long reads trust the last fetch, as a Go
	// duration ("60s", "5m"); default 60s.
	SyncCooldown string `yaml:"sync_cooldown,omitempty"`
	// Webhooks are endpoints `meta serve` sends every new event to.
	Webhooks []Webhook `yaml:"webhooks,omitempty"`
	// Operators are the people whose age keys env files are encrypted to.
	// `meta operator add/rm` edit this list.
	Operators []Operator `yaml:"operators,omitempty"`
	// Access narrows who may read which project's or env's env files; a
	// project/env no rule names is readable by every operator.
	Access []AccessRule `yaml:"access,omitempty"`
	// Signatures is the log's trust policy: SignaturesRequired, or
	// SignaturesOptional (the default, also when empty).
	Signatures string `yaml:"signatures,omitempty"`
	// SignaturesSince is the commit the policy was adopted on: the history
	// it and its ancestors hold was written before signatures were
	// required (`meta verify` reports it as such). Empty: from the commit
	// that made them required.
	SignaturesSince string `yaml:"signatures_since,omitempty"`
	// Servers maps an abra server (the directory under $ABRA_DIR/servers)
	// to the log's place for its apps and, optionally, how to reach its
	// Docker Engine; a server not named here is an env of its own name in
	// the default project.
	Servers map[string]Server `yaml:"servers,omitempty"`
}

// Server is one entry of servers:. It is written either as a place, "env"
// or "project/env" (version 1), or as a mapping with the keys project, env,
// docker_host and docker_cert_path (version 3).
type Server struct {
	// Project and Env place the server's apps; an empty Project is the
	// default project, an empty Env the server's own name.
	Project string `yaml:"project,omitempty"`
	Env     string `yaml:"env,omitempty"`
	// DockerHost is how to reach the server's Docker Engine, in
	// DOCKER_HOST's syntax: unix://, tcp:// or ssh://[user@]host[:port].
	DockerHost string `yaml:"docker_host,omitempty"`
	// DockerCertPath is a directory with ca.pem, cert.pem and key.pem for
	// a tcp:// Engine that speaks TLS, on the machine that runs meta (~
	// is the home directory there).
	DockerCertPath string `yaml:"docker_cert_path,omitempty"`
}

// UnmarshalYAML reads either form of a servers: entry.
func (s *Server) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = Server{}
		s.Project, s.Env = splitPlace(n.Value)
		return nil
	}
	type plain Server // without this method
	return n.Decode((*plain)(s))
}

// MarshalYAML writes a server that only places its apps in the short form.
func (s Server) MarshalYAML() (any, error) {
	if !s.long() {
		if s.Project != "" {
			return s.Project + "/" + s.Env, nil
		}
		return s.Env, nil
	}
	type plain Server
	return plain(s), nil
}

// long says the entry needs the mapping form.
func (s Server) long() bool { return s.DockerHost != "" || s.DockerCertPath != "" }

// ExpandHome puts home for a leading "~/" (or a lone "~") in a path
// people wrote in a file of meta's (meta.yaml's docker_cert_path, the
// operator config's ssh_key), as a shell would; other paths stay as they
// are.
func ExpandHome(path, home string) string {
	if home == "" {
		return path
	}
	if path == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return path
}

// PlaceServer is the project and env the apps of an abra server belong
// to, as Servers says; project is empty when neither Servers nor the
// default project names one.
func (c Config) PlaceServer(server string) (project, env string) {
	to, ok := c.Servers[server]
	if !ok {
		return c.Project, server
	}
	project, env = to.Project, to.Env
	if project == "" {
		project = c.Project
	}
	if env == "" {
		env = server
	}
	return project, env
}

// Engine is an abra server whose Docker Engine meta.yaml says how to
// reach, and where its apps are in the log.
type Engine struct {
	Server, Project, Env       string
	DockerHost, DockerCertPath string
}

// Engines are the servers with a docker_host, sorted by name.
func (c Config) Engines() []Engine {
	var out []Engine
	for name, s := range c.Servers {
		if s.DockerHost == "" {
			continue
		}
		p, e := c.PlaceServer(name)
		out = append(out, Engine{Server: name, Project: p, Env: e, DockerHost: s.DockerHost, DockerCertPath: s.DockerCertPath})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out
}

// ValidBranch checks a branch name by the parts of git's rules that matter
// to a log: a plain name, letters, digits, '-', '_', '.' and '/', not
// starting with '-' or '.', no "..", no "/." and no trailing '/' or ".lock".
func ValidBranch(name string) error {
	bad := name == "" || len(name) > 200 || strings.HasPrefix(name, "-") || strings.HasPrefix(name, ".") ||
		strings.Contains(name, "..") || strings.Contains(name, "/.") || strings.Contains(name, "//") ||
		strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".lock") || name == "HEAD"
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./", c)) {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("%q is not a branch name meta uses (letters, digits, '-', '_', '.', '/')", name)
	}
	return nil
}

// Cooldown is how long reads trust the last fetch: sync_cooldown, else
// DefaultCooldown.
func (c Config) Cooldown() time.Duration {
	if d, err := time.ParseDuration(c.SyncCooldown); err == nil {
		return d
	}
	return DefaultCooldown
}

// splitPlace reads a servers: value, "env" or "project/env".
func splitPlace(to string) (project, env string) {
	if p, e, found := strings.Cut(to, "/"); found {
		return p, e
	}
	return "", to
}

// Webhook is one outgoing webhook endpoint. Its signing secret is
// not here (meta.yaml is committed): SecretEnv names the environment
// variable of the hub that holds it, as "whsec_<base64>".
type Webhook struct {
	Name      string `yaml:"name"`
	URL       string `yaml:"url"`
	SecretEnv string `yaml:"secret_env"`
}

// ErrNewer: meta.yaml is of a layout version a newer meta wrote. Its
// rules may say what this meta does not know (that events must be signed,
// say), so it is not obeyed as if it were of this meta's version: history
// quarantines the commit that made it so, reads go on under the last
// meta.yaml this meta knows, and writes refuse (see store.Write).
var ErrNewer = errors.New("a newer meta wrote this log's meta.yaml")

// Parse reads and checks meta.yaml's content. Keys it does not know,
// written by a newer meta of the same version, are ignored; a newer
// version is ErrNewer.
func Parse(data []byte) (Config, error) {
	var c Config
	if err := yaml.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", File, err)
	}
	switch {
	case c.Version > Version:
		return Config{}, fmt.Errorf("%w: %s is version %d, and this meta knows versions up to %d: upgrade meta (go install ./cmd/... in a newer checkout)", ErrNewer, File, c.Version, Version)
	case c.Version < 1:
		return Config{}, fmt.Errorf("%s: version must be 1 or more, got %d", File, c.Version)
	}
	if c.Branch != "" {
		if err := ValidBranch(c.Branch); err != nil {
			return Config{}, fmt.Errorf("%s: branch: %w", File, err)
		}
	}
	if c.Project != "" {
		if err := projects.ValidateProject(c.Project); err != nil {
			return Config{}, fmt.Errorf("%s: project: %w", File, err)
		}
	}
	if c.Env != "" {
		if err := projects.ValidateEnv(c.Env); err != nil {
			return Config{}, fmt.Errorf("%s: env: %w", File, err)
		}
	}
	seen := map[string]bool{}
	for i, w := range c.Webhooks {
		if err := validWebhookName(w.Name); err != nil {
			return Config{}, fmt.Errorf("%s: webhooks[%d]: %w", File, i, err)
		}
		if seen[w.Name] {
			return Config{}, fmt.Errorf("%s: webhooks: two are named %q", File, w.Name)
		}
		seen[w.Name] = true
		if u, err := url.Parse(w.URL); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			return Config{}, fmt.Errorf("%s: webhook %s: url %q is not an http(s) URL", File, w.Name, w.URL)
		}
		if w.SecretEnv == "" {
			return Config{}, fmt.Errorf("%s: webhook %s: secret_env must name the variable holding its signing secret", File, w.Name)
		}
	}
	if err := c.validateOperators(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", File, err)
	}
	if err := c.validateSignatures(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", File, err)
	}
	for server, to := range c.Servers {
		if err := c.validateServer(server, to); err != nil {
			return Config{}, fmt.Errorf("%s: servers: %s: %w", File, server, err)
		}
	}
	if c.SyncCooldown != "" {
		if d, err := time.ParseDuration(c.SyncCooldown); err != nil || d < 0 {
			return Config{}, fmt.Errorf("%s: sync_cooldown %q is not a duration like 60s or 5m", File, c.SyncCooldown)
		}
	}
	return c, nil
}

// dockerSchemes are the DOCKER_HOST schemes meta reaches an Engine by.
var dockerSchemes = map[string]bool{"unix": true, "tcp": true, "ssh": true}

func (c Config) validateServer(name string, s Server) error {
	// A server's name is the directory abra keeps its apps' env files in,
	// a host name; meta prints it in messages.
	if name == "" || len(name) > 253 || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' || !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("%q is not an abra server's name (a host name: no spaces, slashes or control characters, at most 253 bytes)", name)
	}
	if s.Project != "" {
		if err := projects.ValidateProject(s.Project); err != nil {
			return err
		}
	}
	if s.Env != "" || !s.long() {
		if err := projects.ValidateEnv(s.Env); err != nil {
			return err
		}
	}
	if s.long() && c.Version < 3 {
		return fmt.Errorf("docker_host and docker_cert_path need version: 3, so that a meta that does not know them refuses this file instead of misreading it")
	}
	if s.DockerCertPath != "" && s.DockerHost == "" {
		return fmt.Errorf("docker_cert_path without a docker_host")
	}
	if s.DockerHost != "" {
		u, err := url.Parse(s.DockerHost)
		switch {
		case err != nil:
			return fmt.Errorf("docker_host %q: %w", s.DockerHost, err)
		case !dockerSchemes[u.Scheme]:
			return fmt.Errorf("docker_host %q: want unix:///path, tcp://host:port or ssh://[user@]host[:port]", s.DockerHost)
		case u.Scheme == "unix" && u.Path == "", u.Scheme != "unix" && u.Host == "":
			return fmt.Errorf("docker_host %q: no %s", s.DockerHost, map[bool]string{true: "socket path", false: "host"}[u.Scheme == "unix"])
		case s.DockerCertPath != "" && u.Scheme != "tcp":
			return fmt.Errorf("docker_cert_path is for tcp:// hosts, not %s", s.DockerHost)
		}
	}
	return nil
}

// WithSignatures is c with the trust policy set: required from commit
// since on (the commit the policy is adopted on), which takes meta.yaml
// version 2; or optional, which keeps the version and forgets since.
func (c Config) WithSignatures(required bool, since string) Config {
	if !required {
		c.Signatures, c.SignaturesSince = SignaturesOptional, ""
		return c
	}
	c.Signatures, c.SignaturesSince = SignaturesRequired, since
	if c.Version < 2 {
		c.Version = 2
	}
	return c
}

// WithRecipes is c at the version a log holding recipes' logs needs.
func (c Config) WithRecipes() Config {
	if c.Version < RecipesVersion {
		c.Version = RecipesVersion
	}
	return c
}

// SignaturesRequired says the log requires every commit to be signed.
func (c Config) SignaturesRequired() bool { return c.Signatures == SignaturesRequired }

func (c Config) validateSignatures() error {
	switch c.Signatures {
	case "", SignaturesOptional:
	case SignaturesRequired:
		if c.Version < 2 {
			return fmt.Errorf("signatures: %s needs version: 2, so that a meta too old to check signatures refuses this log instead of believing every commit", SignaturesRequired)
		}
	default:
		return fmt.Errorf("signatures: %q is not %q or %q", c.Signatures, SignaturesRequired, SignaturesOptional)
	}
	if c.SignaturesSince != "" && !isCommitID(c.SignaturesSince) {
		return fmt.Errorf("signatures_since: %q is not a full commit id (40 hex digits)", c.SignaturesSince)
	}
	return nil
}

func isCommitID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
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

// validWebhookName checks a webhook's name: what `meta serve` logs it by.
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

// Rewrite renders c's version, trust policy, operators and access rules into old, the current
// meta.yaml, keeping everything else there as people wrote it, comments
// included.
func (c Config) Rewrite(old []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(old, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", File, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a mapping", File)
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
	if err := set("version", c.Version, false); err != nil {
		return nil, err
	}
	if err := set("signatures", c.Signatures, c.Signatures == ""); err != nil {
		return nil, err
	}
	if err := set("signatures_since", c.SignaturesSince, c.SignaturesSince == ""); err != nil {
		return nil, err
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
	if _, err := Parse(b.Bytes()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
