package gitrepo

import (
	"os"
	"path/filepath"
	"strings"

	gitconfig "github.com/go-git/go-git/v5/config"
)

// UserIdentity is the user.name and user.email git would commit as in the
// work tree root: the repository's config over the user's global config.
// ok is false when git has no user.name there.
func UserIdentity(root string) (name, email string, ok bool) {
	get := userConfig(root)
	name, email = get("user", "name"), get("user", "email")
	return name, email, strings.TrimSpace(name) != ""
}

// SSHSigningKey is git's user.signingkey in the work tree root when
// gpg.format is ssh (the repository's config over the user's global
// config), as `git commit -S` would sign with: a key file's path, or
// "key::" and a public key; ok is false when git signs no commit with ssh
// there.
func SSHSigningKey(root string) (key string, ok bool) {
	get := userConfig(root)
	key = strings.TrimSpace(get("user", "signingkey"))
	return key, strings.EqualFold(get("gpg", "format"), "ssh") && key != ""
}

// userConfig reads the user's global git config and the repository's at
// root, and answers for a section's key as git would: the repository's
// value over the global one.
func userConfig(root string) func(section, key string) string {
	var cfgs []*gitconfig.Config
	if cfg, err := gitconfig.LoadConfig(gitconfig.GlobalScope); err == nil {
		cfgs = append(cfgs, cfg)
	}
	if data, err := os.ReadFile(filepath.Join(root, ".git", "config")); err == nil {
		cfg := gitconfig.NewConfig()
		if cfg.Unmarshal(data) == nil {
			cfgs = append(cfgs, cfg)
		}
	}
	return func(section, key string) string {
		v := ""
		for _, c := range cfgs {
			if s := c.Raw.Section(section).Option(key); s != "" {
				v = s
			}
		}
		return v
	}
}
