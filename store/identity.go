package store

import (
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"

	gitconfig "github.com/go-git/go-git/v5/config"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// ParseOperator reads "Name <email>" or a bare name.
func ParseOperator(s string) (*metav1.Actor, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("operator is empty")
	}
	if strings.ContainsAny(s, "\n\r\x00") {
		return nil, fmt.Errorf("operator %q contains a line break or NUL", s)
	}
	if strings.Contains(s, "<") {
		addr, err := mail.ParseAddress(s)
		if err != nil || addr.Name == "" {
			return nil, fmt.Errorf("operator %q is neither a name nor \"Name <email>\"", s)
		}
		return &metav1.Actor{Name: addr.Name, Email: addr.Address}, nil
	}
	return &metav1.Actor{Name: s}, nil
}

// GitIdentity is the user.name and user.email git would use in root: the
// repository's config over the user's global config. ok is false when git
// has no user.name.
func GitIdentity(root string) (actor *metav1.Actor, ok bool) {
	var name, email string
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
	if strings.TrimSpace(name) == "" {
		return nil, false
	}
	return &metav1.Actor{Name: name, Email: email}, true
}
