package signingtest

import (
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A socket file appears when ssh-agent binds, before it listens: a client
// that connects in between is refused (CI's failing TestSSHRemoteWithAgent,
// "Error connecting to agent: Connection refused"). Ready waits for a
// socket that accepts, not for the file.
func TestReadyWaitsForAListeningSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "ready")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("bound socket has no file: %v", err)
	}
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		t.Fatal("a bound socket that does not listen accepted a connection: the test proves nothing")
	}
	// listening is set just before the socket listens: ready may return
	// only after it is.
	var listening atomic.Bool
	go func() {
		time.Sleep(150 * time.Millisecond)
		listening.Store(true)
		syscall.Listen(fd, 8)
	}()
	if err := ready(sock, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if !listening.Load() {
		t.Fatal("ready before the socket listened")
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("ready, yet refused: %v", err)
	}
	c.Close()
	syscall.Close(fd)
}

// A socket that never listens is an error once the wait is over, not a hang.
func TestReadyGivesUp(t *testing.T) {
	err := ready(filepath.Join(t.TempDir(), "none"), 100*time.Millisecond)
	if err == nil {
		t.Fatal("ready on a socket nobody made")
	}
}
