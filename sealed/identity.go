package sealed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Identity is the age secret key material an operator decrypts with, and
// where it came from (for messages; never the key itself).
type Identity struct {
	Source string
	Text   string
}

// FindIdentity settles which age identity to use, the way sops users
// expect, first found wins: the --identity file, else the file named by
// SOPS_AGE_KEY_FILE, else the keys in SOPS_AGE_KEY, else sops's default
// keys.txt under $XDG_CONFIG_HOME or ~/.config. getenv reads the
// environment; it is passed in so that nothing depends on mutating the
// process environment.
func FindIdentity(flagFile string, getenv func(string) string) (Identity, error) {
	if flagFile != "" {
		return readIdentity("--identity "+flagFile, flagFile)
	}
	if f := getenv("SOPS_AGE_KEY_FILE"); f != "" {
		return readIdentity("SOPS_AGE_KEY_FILE="+f, f)
	}
	if k := getenv("SOPS_AGE_KEY"); strings.TrimSpace(k) != "" {
		return checkIdentity(Identity{Source: "SOPS_AGE_KEY", Text: k})
	}
	var def string
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		def = filepath.Join(x, "sops", "age", "keys.txt")
	} else if h := getenv("HOME"); h != "" {
		def = filepath.Join(h, ".config", "sops", "age", "keys.txt")
	}
	if def != "" {
		id, err := readIdentity(def, def)
		if !errors.Is(err, os.ErrNotExist) {
			return id, err
		}
	}
	return Identity{}, fmt.Errorf("%w: pass --identity FILE, or set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, or put your key in %s (make one with age-keygen -o FILE)", ErrNoIdentity, orNone(def))
}

func orNone(s string) string {
	if s == "" {
		return "~/.config/sops/age/keys.txt"
	}
	return s
}

func readIdentity(source, path string) (Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Identity{}, fmt.Errorf("age identity %s: %w", source, err)
	}
	return checkIdentity(Identity{Source: source, Text: string(data)})
}

// checkIdentity catches the common mistake of pointing at a public key or
// an empty file early, with a message that says so; the helper parses the
// keys for real.
func checkIdentity(id Identity) (Identity, error) {
	for _, line := range strings.Split(id.Text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "AGE-SECRET-KEY-") || strings.HasPrefix(line, "AGE-PLUGIN-") {
			return id, nil
		}
	}
	return Identity{}, fmt.Errorf("%w: %s holds no AGE-SECRET-KEY line (an age1... recipient is the public half; meta needs the secret key file age-keygen wrote)", ErrNoIdentity, id.Source)
}
