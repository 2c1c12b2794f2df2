package swarm_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

// Dial to a socket nobody serves fails at once, naming the host.
func TestDialDeadSocket(t *testing.T) {
	host := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
	start := time.Now()
	_, err := swarm.Dial(context.Background(), swarm.Host{DockerHost: host})
	if !errors.Is(err, swarm.ErrUnreachable) || !strings.Contains(err.Error(), host) {
		t.Fatalf("err = %v, want ErrUnreachable naming %s", err, host)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
}

// An Engine that accepts and never answers: the caller's deadline holds,
// and the error says unreachable.
func TestDialSilentEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = swarm.Dial(ctx, swarm.Host{DockerHost: "unix://" + sock})
	if !errors.Is(err, swarm.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %s", took)
	}
}

// An Engine that is not a swarm manager answers, and says so.
func TestDialNotManager(t *testing.T) {
	for _, tt := range []struct{ name, info, want string }{
		{"not in a swarm", `{"Swarm":{"LocalNodeState":"inactive","ControlAvailable":false}}`, "not in a swarm"},
		{"a worker", `{"Swarm":{"LocalNodeState":"active","ControlAvailable":false}}`, "worker"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "docker.sock")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Api-Version", "1.41")
				if strings.HasSuffix(r.URL.Path, "/info") {
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(tt.info))
				}
			})}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
			_, err = swarm.Dial(context.Background(), swarm.Host{DockerHost: "unix://" + sock})
			if !errors.Is(err, swarm.ErrNotManager) || errors.Is(err, swarm.ErrUnreachable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrNotManager saying %q", err, tt.want)
			}
		})
	}
}

func TestDialRefusesBadHosts(t *testing.T) {
	for _, host := range []string{"http://example.com", "npipe:////./pipe/docker_engine", "no scheme", "ssh://"} {
		_, err := swarm.Dial(context.Background(), swarm.Host{DockerHost: host})
		if err == nil || errors.Is(err, swarm.ErrUnreachable) || !strings.Contains(err.Error(), "DOCKER_HOST") {
			t.Errorf("%q: err = %v", host, err)
		}
	}
}
