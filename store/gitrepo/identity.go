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
	if cfg, err := gitconfig.LoadConfig(gitconfig.GlobalScope); err == nil {
		name, email = cfg.User.Name, cfg.User.Email
	}
	if data, err := os.ReadFile(filepath.Join(root, ".git", "config")); err == nil {
		cfg := gitconfig.NewConfig()
		if cfg.Unmarshal(data) == nil {
			if cfg.User.Name != "" {
				name = cfg.User.Name
			}
			if cfg.User.Email != "" {
				email = cfg.User.Email
			}
		}
	}
	return name, email, strings.TrimSpace(name) != ""
}
