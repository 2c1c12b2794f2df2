package sealed

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

const testKey = "# created: 2026-11-23\n# public key: age1xyz\nAGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n"

// Identity is found in sops's order, first found wins, from a getenv the
// test controls: nothing touches the process environment.
func TestFindIdentity(t *testing.T) {
	dir := t.TempDir()
	flagFile := filepath.Join(dir, "flag.txt")
	envFile := filepath.Join(dir, "env.txt")
	pubOnly := filepath.Join(dir, "pub.txt")
	xdg := filepath.Join(dir, "xdg")
	home := filepath.Join(dir, "home")
	for _, p := range []string{flagFile, envFile, filepath.Join(xdg, "sops/age/keys.txt"), filepath.Join(home, ".config/sops/age/keys.txt")} {
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte(testKey), 0o600)
	}
	os.WriteFile(pubOnly, []byte("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"), 0o600)
	tests := []struct {
		name, flag string
		env        map[string]string
		source     string
		err        error
	}{
		{"flag first", flagFile, map[string]string{"SOPS_AGE_KEY_FILE": envFile, "SOPS_AGE_KEY": testKey}, "--identity " + flagFile, nil},
		{"then SOPS_AGE_KEY_FILE", "", map[string]string{"SOPS_AGE_KEY_FILE": envFile, "SOPS_AGE_KEY": testKey}, "SOPS_AGE_KEY_FILE=" + envFile, nil},
		{"then SOPS_AGE_KEY", "", map[string]string{"SOPS_AGE_KEY": testKey, "HOME": home}, "SOPS_AGE_KEY", nil},
		{"then XDG_CONFIG_HOME", "", map[string]string{"XDG_CONFIG_HOME": xdg, "HOME": home}, filepath.Join(xdg, "sops/age/keys.txt"), nil},
		{"then ~/.config", "", map[string]string{"HOME": home}, filepath.Join(home, ".config/sops/age/keys.txt"), nil},
		{"nothing", "", map[string]string{"HOME": dir}, "", ErrNoIdentity},
		{"a public key is no identity", pubOnly, nil, "", ErrNoIdentity},
		{"a missing file", filepath.Join(dir, "missing"), nil, "", os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := FindIdentity(tt.flag, func(k string) string { return tt.env[k] })
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || id.Source != tt.source || id.Text != testKey {
				t.Fatalf("FindIdentity = %q, %v; want source %q", id.Source, err, tt.source)
			}
		})
	}
}
