package abra

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNoContext: the docker CLI has no context of that name.
var ErrNoContext = errors.New("no docker context")

// DockerContext is how the docker CLI reaches one Engine: abra adds a
// context named after each server (`abra server add`), and reaches the
// server through it.
type DockerContext struct {
	// Host is the Engine's address, in DOCKER_HOST's syntax.
	Host string
	// CertPath is the directory holding the context's ca.pem, cert.pem
	// and key.pem, empty when it has none.
	CertPath string
}

// maxContextMeta bounds a context's meta.json: a few hundred bytes in
// practice.
const maxContextMeta = 1 << 20

// FindDockerContext reads the docker CLI's context called name, from
// $DOCKER_CONFIG (default ~/.docker) where the CLI keeps it:
// contexts/meta/<sha256 of name>/meta.json, and its TLS files under
// contexts/tls/<sha256 of name>/docker.
func FindDockerContext(name string, getenv func(string) string) (DockerContext, error) {
	dir := getenv("DOCKER_CONFIG")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return DockerContext{}, fmt.Errorf("%w %q: neither DOCKER_CONFIG nor HOME is set", ErrNoContext, name)
		}
		dir = filepath.Join(home, ".docker")
	}
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	path := filepath.Join(dir, "contexts", "meta", id, "meta.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DockerContext{}, fmt.Errorf("%w %q (no %s)", ErrNoContext, name, path)
	}
	if err != nil {
		return DockerContext{}, fmt.Errorf("docker context %q: %w", name, err)
	}
	if len(data) > maxContextMeta {
		return DockerContext{}, fmt.Errorf("docker context %q: %s is %d bytes, not a context", name, path, len(data))
	}
	var meta struct {
		Name      string
		Endpoints map[string]struct{ Host string }
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return DockerContext{}, fmt.Errorf("docker context %q: %s: %w", name, path, err)
	}
	host := meta.Endpoints["docker"].Host
	if meta.Name != name || host == "" {
		return DockerContext{}, fmt.Errorf("docker context %q: %s names %q with docker host %q", name, path, meta.Name, host)
	}
	c := DockerContext{Host: host}
	tls := filepath.Join(dir, "contexts", "tls", id, "docker")
	if _, err := os.Stat(filepath.Join(tls, "ca.pem")); err == nil {
		c.CertPath = tls
	}
	return c, nil
}
