package main

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

// meta append, given a NATS server, announces the event there; without a
// reachable server it still appends, and says so.
func TestAppendAnnouncesOnNATS(t *testing.T) {
	srv := notifytest.Server(t)
	dir := t.TempDir() + "/log"
	if _, err := meta(t, "", "init", dir, "--project", "coop", "--env", "prod"); err != nil {
		t.Fatal(err)
	}
	id, err := meta(t, dir, "--nats", srv.ClientURL(), "append", "deploy", "matrix.example.com", "--version", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(id)

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	s, err := js.Stream(ctx, notify.StreamName)
	if err != nil {
		t.Fatalf("append made no stream: %v", err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, "meta.events.coop.prod.matrix_example_com.deploy")
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("ce-id"); got != id {
		t.Fatalf("ce-id %q, want %q", got, id)
	}
	if got := msg.Header.Get("ce-source"); got != "file://"+dir {
		t.Fatalf("ce-source %q", got)
	}
	ev, err := notify.Decode(&nats.Msg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data})
	if err != nil || ev.GetVersion() != "1.0.0" {
		t.Fatalf("event %v, %v", ev, err)
	}

	// On request the body is the event's JSON, and the header says so.
	if _, err := meta(t, dir, "--nats", srv.ClientURL(), "--nats-json", "append", "upgrade", "matrix.example.com", "--version", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	jm, err := s.GetLastMsgForSubject(ctx, "meta.events.coop.prod.matrix_example_com.upgrade")
	if err != nil {
		t.Fatal(err)
	}
	if ct := jm.Header.Get("Content-Type"); ct != notify.ContentJSON || !strings.Contains(string(jm.Data), `"version":"1.1.0"`) {
		t.Fatalf("JSON body: %s %s", ct, jm.Data)
	}

	// NATS gone: the append still succeeds, with a warning.
	srv.Shutdown()
	srv.WaitForShutdown()
	out, errOut, err := metaFull(t, dir, "--nats", srv.ClientURL(), "append", "note", "matrix.example.com", "-m", "while NATS was down")
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("append with NATS down: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "appended, but not announced on NATS") {
		t.Fatalf("no warning: %q", errOut)
	}
}
