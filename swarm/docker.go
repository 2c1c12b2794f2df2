package swarm

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultHost is where the Docker Engine listens when DOCKER_HOST is unset.
const DefaultHost = "unix:///var/run/docker.sock"

// maxInspect bounds the answer read from the Engine; a service is a few KB.
const maxInspect = 8 << 20

// Inspect asks the Docker Engine at host (DOCKER_HOST's syntax: unix:// or
// tcp://) for one service, as `docker service inspect` would.
func Inspect(ctx context.Context, host, service string) ([]Service, error) {
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	transport := &http.Transport{}
	base := ""
	switch u.Scheme {
	case "unix":
		sock := u.Path
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		base = "http://docker"
	case "tcp", "http":
		base = "http://" + u.Host
	default:
		return nil, fmt.Errorf("DOCKER_HOST %q: meta speaks to unix:// and tcp:// engines; for %s:// run `docker service inspect %s | meta observe DOMAIN --inspect -`", host, u.Scheme, service)
	}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/services/"+url.PathEscape(service), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the Docker Engine at %s: %w", host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxInspect))
	if err != nil {
		return nil, fmt.Errorf("read the Docker Engine's answer: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return ParseInspect(body)
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: the Docker Engine at %s has no service %s; is the app deployed there?", ErrNoService, host, service)
	}
	return nil, fmt.Errorf("the Docker Engine at %s answered %s: %s", host, resp.Status, strings.TrimSpace(string(body)))
}
