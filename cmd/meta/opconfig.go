package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

// operatorConfig is the operator's own settings, in
// $META_CONFIG, else $XDG_CONFIG_HOME/meta/config.yaml, else
// ~/.config/meta/config.yaml. Unlike meta.yaml it is not shared.
type operatorConfig struct {
	// Sync turns `meta exec` on (true) or makes it a plain pass-through to
	// abra (false), so `alias abra='meta exec -- abra'` can stay in a
	// shell profile. Unset means on.
	Sync *bool `yaml:"sync"`
	// Dir is the log to use when neither --dir, $META_DIR nor the current
	// directory names one.
	Dir string `yaml:"dir"`
	// Abra is the abra executable `meta exec` runs (default: abra on PATH).
	Abra string `yaml:"abra"`
	// SSHKey is the key meta signs the log's commits with, as git's
	// user.signingkey names one: a private key file, or a public one
	// (.pub) whose private half ssh-agent holds. "~/" is the home
	// directory; a relative path is relative to the config file.
	SSHKey string `yaml:"ssh_key"`
	// SettleTimeout is how long `meta exec` waits for Swarm to settle a
	// deploy's update, as a Go duration; empty derives it from the stack.
	SettleTimeout string `yaml:"settle_timeout"`
	path          string
}

func (e *env) operatorConfigPath() string {
	if p := e.getenv("META_CONFIG"); p != "" {
		return p
	}
	base := e.getenv("XDG_CONFIG_HOME")
	if base == "" {
		home := e.getenv("HOME")
		if home == "" {
			return ""
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "meta", "config.yaml")
}

// loadOperatorConfig reads the operator's config; a missing file is an
// empty config, a broken one an error naming it.
func (e *env) loadOperatorConfig() (operatorConfig, error) {
	p := e.operatorConfigPath()
	c := operatorConfig{path: p}
	if p == "" {
		return c, nil
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("operator config: %w", err)
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return c, usageError{fmt.Errorf("operator config %s: %w", p, err)}
	}
	if c.Dir != "" && !filepath.IsAbs(c.Dir) {
		c.Dir = filepath.Join(filepath.Dir(p), c.Dir)
	}
	if c.SSHKey != "" {
		c.SSHKey = e.expandHome(c.SSHKey)
		if !filepath.IsAbs(c.SSHKey) {
			c.SSHKey = filepath.Join(filepath.Dir(p), c.SSHKey)
		}
	}
	return c, nil
}

// expandHome puts the home directory for a leading "~/", as a shell would.
func (e *env) expandHome(p string) string { return config.ExpandHome(p, e.getenv("HOME")) }
