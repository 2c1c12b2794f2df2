package hub

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Run as a child by TestAKilledHubDoesNotLockItsData: hold the data lock
// of $META_TEST_HOLD_DATA until killed.
func TestHelperHoldsDataLock(t *testing.T) {
	dir := os.Getenv("META_TEST_HOLD_DATA")
	if dir == "" {
		t.Skip("run by TestAKilledHubDoesNotLockItsData")
	}
	if _, err := lockData(dir); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("locked")
	select {}
}

func newHub(t *testing.T, s Config) (*Hub, error) {
	t.Helper()
	s.NATSListen, s.HTTPListen = "127.0.0.1:0", "127.0.0.1:0"
	return New(context.Background(), s)
}

// Two hubs on one data directory would run two JetStream servers on the
// same files: the second is refused, naming the directory and the first
// one's pid, and the directory is free again once the first closes.
func TestASecondHubOnTheSameDataIsRefused(t *testing.T) {
	s := newLog(t)
	data := t.TempDir()
	first, err := newHub(t, Config{Store: s, DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newHub(t, Config{Store: s, DataDir: data})
	if !errors.Is(err, ErrDataInUse) || !strings.Contains(err.Error(), data) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second hub on the same data: %v, want ErrDataInUse naming %s and pid %d", err, data, os.Getpid())
	}
	// The default data directory is locked as well.
	def, err := newHub(t, Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newHub(t, Config{Store: s}); !errors.Is(err, ErrDataInUse) || !strings.Contains(err.Error(), ".git/meta/nats") {
		t.Fatalf("second hub on the default data: %v", err)
	}
	def.Close()
	first.Close()
	again, err := newHub(t, Config{Store: s, DataDir: data})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}

// The kernel lets go of a killed hub's lock: no stale lock to clear.
func TestAKilledHubDoesNotLockItsData(t *testing.T) {
	data := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestHelperHoldsDataLock$")
	child.Env = append(os.Environ(), "META_TEST_HOLD_DATA="+data)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("child: %q", line)
	}
	s := newLog(t)
	if _, err := newHub(t, Config{Store: s, DataDir: data}); !errors.Is(err, ErrDataInUse) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", child.Process.Pid)) {
		t.Fatalf("while the child holds it: %v, want the child's pid %d", err, child.Process.Pid)
	}
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	h, err := newHub(t, Config{Store: s, DataDir: data})
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	h.Close()
}

// A port already taken is said at once, with the address and the flag
// that picks another, for NATS and for HTTP alike.
func TestAPortInUseIsNamed(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	s := newLog(t)
	for _, tt := range []struct {
		flag string
		cfg  Config
	}{
		{"--nats-listen", Config{Store: s, DataDir: t.TempDir(), NATSListen: addr, HTTPListen: "127.0.0.1:0"}},
		{"--listen", Config{Store: s, DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: addr}},
	} {
		start := time.Now()
		h, err := New(context.Background(), tt.cfg)
		if err == nil {
			h.Close()
			t.Fatalf("%s %s: started on a taken port", tt.flag, addr)
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), tt.flag) || !strings.Contains(err.Error(), "in use") {
			t.Errorf("%s: %v, want the address, in use, and the flag", tt.flag, err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s: said after %s", tt.flag, took)
		}
	}
}

// A bad address is refused before anything starts: no lock is taken.
func TestBadAddressesAreRefusedFirst(t *testing.T) {
	s := newLog(t)
	data := t.TempDir()
	for _, cfg := range []Config{
		{Store: s, DataDir: data, HTTPListen: "notaport", NATSListen: "127.0.0.1:0"},
		{Store: s, DataDir: data, HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:70000"},
	} {
		if h, err := New(context.Background(), cfg); err == nil {
			h.Close()
			t.Fatalf("%q, %q: accepted", cfg.HTTPListen, cfg.NATSListen)
		}
		if _, err := os.Stat(data + "/meta-serve.lock"); !os.IsNotExist(err) {
			t.Fatalf("%q, %q: the data directory was touched: %v", cfg.HTTPListen, cfg.NATSListen, err)
		}
	}
}
