package store

import (
	"bytes"
	"fmt"
	"net/url"
	"time"

	"gopkg.in/yaml.v3"

	"git.coopcloud.tech/coop-cloud/meta/projects"
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
