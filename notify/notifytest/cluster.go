package notifytest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServerBinary is where the tests look for the standalone nats-server
// first (where `go install github.com/nats-io/nats-server/v2@v2.15.2`
// puts it as root), then on PATH.
const ServerBinary = "/root/go/bin/nats-server"

// Cluster is a NATS cluster of real nats-server processes on loopback, as
// a collective runs one: each with JetStream, its own store directory and
// configuration file, routes to all the others. A test kills nodes
// (SIGKILL, as a lost machine) and starts them again on the same ports and
// data. Everything stops when the test ends.
type Cluster struct {
	t     testing.TB
	bin   string
	opts  []nats.Option
	nodes []*node
}

type node struct {
	name    string
	conf    string
	port    int // clients
	monitor int // HTTP monitoring, for /healthz
	mu      sync.Mutex
	cmd     *exec.Cmd
	out     *SyncBuffer
	exited  chan struct{}
}

// NewCluster starts n nats-server processes clustered together and waits
// until JetStream has a meta leader and every node is healthy. extra is
// added to every node's configuration (an authorization block, say). It
// skips the test when there is no nats-server binary. opts are how the
// harness itself connects (credentials that extra asks for).
func NewCluster(t testing.TB, n int, extra string, opts ...nats.Option) *Cluster {
	t.Helper()
	bin := ServerBinary
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("nats-server"); err != nil {
			t.Skipf("no nats-server at %s or on PATH: go install github.com/nats-io/nats-server/v2@v2.15.2 to run the cluster tests", ServerBinary)
		}
	}
	c := &Cluster{t: t, bin: bin, opts: opts}
	routes := make([]int, n)
	for i := range n {
		routes[i] = FreePort(t)
	}
	for i := range n {
		nd := &node{name: fmt.Sprintf("n%d", i), port: FreePort(t), monitor: FreePort(t)}
		var others []string
		for j, p := range routes {
			if j != i {
				others = append(others, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
			}
		}
		dir := t.TempDir()
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: meta-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
%s
`, nd.name, nd.port, nd.monitor, filepath.Join(dir, "js"), routes[i], strings.Join(others, ", "), extra)
		nd.conf = filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(nd.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i, syscall.SIGKILL)
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				t.Logf("nats-server %s:\n%s", nd.name, nd.out.String())
			}
		}
	})
	for i := range c.nodes {
		c.start(i)
	}
	c.WaitHealthy()
	return c
}

// URL is every node's client URL, comma separated, as a hub or follower
// is given a cluster.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.NodeURL(i)
	}
	return strings.Join(urls, ",")
}

// NodeURL is node i's client URL.
func (c *Cluster) NodeURL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[i].port) }

// Kill stops node i with SIGKILL, as a machine that is lost, and waits
// until the process is gone.
func (c *Cluster) Kill(i int) { c.stop(i, syscall.SIGKILL) }

// Stop stops node i with sig (SIGTERM: a planned restart, the server
// hands its leaderships over first) and waits until the process is gone.
func (c *Cluster) Stop(i int, sig syscall.Signal) { c.stop(i, sig) }

// Restart starts node i again, on its ports with its data, and waits
// until it listens; WaitHealthy waits until it caught up.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.start(i)
}

func (c *Cluster) start(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.out == nil {
		nd.out = &SyncBuffer{}
	}
	cmd := exec.Command(c.bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = nd.out, nd.out
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start nats-server %s: %v", nd.name, err)
	}
	nd.cmd, nd.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); close(exited) }(nd.exited)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", nd.port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nats-server %s does not listen on %d after 10s:\n%s", nd.name, nd.port, nd.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) stop(i int, sig syscall.Signal) {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Signal(sig)
	<-nd.exited
	nd.cmd = nil
}

// WaitHealthy waits until every running node answers its /healthz (it is
// a JetStream peer that is current) and JetStream has a meta leader.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i, nd := range c.nodes {
		nd.mu.Lock()
		running := nd.cmd != nil
		nd.mu.Unlock()
		if !running {
			continue
		}
		for !healthy(nd.monitor) {
			if time.Now().After(deadline) {
				c.t.Fatalf("nats-server %s is not healthy after 30s:\n%s", c.nodes[i].name, nd.out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	nc, err := nats.Connect(c.URL(), c.opts...)
	if err != nil {
		c.t.Fatalf("connect to the cluster: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx) // answered by the meta leader
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("JetStream has no meta leader after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func healthy(port int) bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
