package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

const (
	ageA = "age1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	ageB = "age1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	ageC = "age1cccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

func TestReadersMostSpecificRuleWins(t *testing.T) {
	c := Config{
		Operators: []Operator{{Name: "alice", Age: ageA}, {Name: "bob", Age: ageB}, {Name: "carol", Age: ageC}},
		Access: []AccessRule{
			{Scope: "*", Operators: []string{"alice", "bob"}},
			{Scope: "coop/*", Operators: []string{"bob"}},
			{Scope: "coop/prod", Operators: []string{"carol"}},
		},
	}
	tests := []struct{ project, env, want, rule string }{
		{"coop", "prod", "carol", "coop/prod"},
		{"coop", "staging", "bob", "coop/*"},
		{"other", "prod", "alice,bob", "*"},
	}
	for _, tt := range tests {
		got, rule := c.Readers(tt.project, tt.env)
		var names []string
		for _, o := range got {
			names = append(names, o.Name)
		}
		if strings.Join(names, ",") != tt.want || rule != tt.rule {
			t.Errorf("Readers(%s/%s) = %v by %q, want %s by %q", tt.project, tt.env, names, rule, tt.want, tt.rule)
		}
	}
	c.Access = nil
	if got, rule := c.Readers("coop", "prod"); len(got) != 3 || rule != "" {
		t.Errorf("without rules every operator reads: %v %q", got, rule)
	}
}

func TestOperatorChangesKeepMetaYAMLAsWritten(t *testing.T) {
	old := []byte("# Our log. Ask alice before changing webhooks.\nversion: 1\nproject: coop # the collective\nenv: prod\n")
	c, err := Parse(old)
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.WithOperator(Operator{Name: "alice", Age: ageA})
	if err != nil {
		t.Fatal(err)
	}
	c, _ = c.WithOperator(Operator{Name: "bob", Age: ageB})
	if _, err := c.WithOperator(Operator{Name: "bob", Age: ageC}); !errors.Is(err, ErrOperator) {
		t.Errorf("a second bob: %v", err)
	}
	if _, err := c.WithOperator(Operator{Name: "carol", Age: ageA}); !errors.Is(err, ErrOperator) {
		t.Errorf("alice's key for carol: %v", err)
	}
	c, err = c.WithAccess("coop/prod", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WithoutOperator("alice"); !errors.Is(err, ErrOperator) {
		t.Errorf("removing the last reader of coop/prod: %v", err)
	}
	if _, err := c.WithAccess("coop/prod", []string{"nobody"}); !errors.Is(err, ErrOperator) {
		t.Errorf("access for an unknown operator: %v", err)
	}
	out, err := c.Rewrite(old)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Our log. Ask alice before changing webhooks.", "project: coop # the collective", "name: bob", "scope: coop/prod"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("meta.yaml lost %q:\n%s", want, out)
		}
	}
	back, err := Parse(out)
	if err != nil || len(back.Operators) != 2 || len(back.Access) != 1 {
		t.Fatalf("re-read: %+v, %v", back, err)
	}
	back, _ = back.WithoutAccess("coop/prod")
	back, err = back.WithoutOperator("bob")
	if err != nil {
		t.Fatal(err)
	}
	out, _ = back.Rewrite(out)
	if strings.Contains(string(out), "access") || strings.Contains(string(out), "bob") {
		t.Errorf("removed entries remain:\n%s", out)
	}
}

func TestConfigRefusesBadOperators(t *testing.T) {
	tests := map[string]string{
		"secret key":       "version: 1\noperators:\n  - {name: a, age: AGE-SECRET-KEY-1XYZ}\n",
		"not a recipient":  "version: 1\noperators:\n  - {name: a, age: ssh-ed25519 AAAA}\n",
		"same name":        "version: 1\noperators:\n  - {name: a, age: " + ageA + "}\n  - {name: a, age: " + ageB + "}\n",
		"unknown operator": "version: 1\noperators:\n  - {name: a, age: " + ageA + "}\naccess:\n  - {scope: coop/prod, operators: [b]}\n",
		"empty rule":       "version: 1\noperators:\n  - {name: a, age: " + ageA + "}\naccess:\n  - {scope: coop/prod, operators: []}\n",
		"bad scope":        "version: 1\noperators:\n  - {name: a, age: " + ageA + "}\naccess:\n  - {scope: coop, operators: [a]}\n",
	}
	for name, yaml := range tests {
		if _, err := Parse([]byte(yaml)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A layout version this meta does not know is ErrNewer, never read as if
// it were this meta's; versions below 1 are plain mistakes.
func TestParseVersions(t *testing.T) {
	tests := []struct {
		yaml  string
		newer bool
		bad   string
	}{
		{yaml: "version: 1\n"},
		{yaml: "version: 2\n"},
		{yaml: "version: 3\n"},
		{yaml: "version: 5\n", newer: true, bad: "meta.yaml is version 5, and this meta knows versions up to 4: upgrade meta"},
		{yaml: "version: 2\nsignatures: required\n"},
		{yaml: "version: 2\nsignatures: optional\n"},
		{yaml: "version: 1\nsignatures: optional\n"},
		{yaml: "version: 2\nsignatures: required\nsignatures_since: 0123456789abcdef0123456789abcdef01234567\n"},
		// An older meta ignores keys it does not know: requiring
		// signatures at version 1 would be believed by none of them.
		{yaml: "version: 1\nsignatures: required\n", bad: "signatures: required needs version: 2"},
		{yaml: "version: 2\nsignatures: yes\n", bad: `signatures: "yes" is not "required" or "optional"`},
		{yaml: "version: 2\nsignatures: required\nsignatures_since: HEAD~3\n", bad: "signatures_since: \"HEAD~3\" is not a full commit id"},
		{yaml: "version: 99\nsignatures: required\n", newer: true, bad: "version 99"},
		{yaml: "version: 0\n", bad: "version must be 1 or more"},
		{yaml: "project: coop\n", bad: "version must be 1 or more, got 0"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml))
		switch {
		case tt.bad == "" && err != nil:
			t.Errorf("Parse(%q): %v", tt.yaml, err)
		case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad)):
			t.Errorf("Parse(%q) = %v, want an error saying %q", tt.yaml, err, tt.bad)
		case errors.Is(err, ErrNewer) != tt.newer:
			t.Errorf("Parse(%q) = %v: ErrNewer is %v, want %v", tt.yaml, err, errors.Is(err, ErrNewer), tt.newer)
		}
	}
}

// sshKey is a fresh ed25519 key as a .pub file's line, and the PEM of its
// private half (what someone might paste by mistake).
func sshKey(t *testing.T, comment string) (pub string, private string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(sk, comment)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment, string(pem.EncodeToMemory(block))
}

func TestOperatorSSHKeys(t *testing.T) {
	alice, alicePriv := sshKey(t, "alice@laptop")
	bob, _ := sshKey(t, "bob@laptop")
	aliceAgain := strings.TrimSuffix(alice, "alice@laptop") + "someone-else"
	base := "version: 1\noperators:\n  - {name: alice, age: " + ageA + ", ssh: " + alice + "}\n"
	c, err := Parse([]byte(base))
	if err != nil {
		t.Fatalf("an operator with an ssh key, at version 1: %v", err)
	}
	k, _ := signing.ParseKey(alice)
	if o, ok := c.OperatorByKey(k); !ok || o.Name != "alice" {
		t.Fatalf("OperatorByKey(alice's key) = %v, %v", o, ok)
	}
	kb, _ := signing.ParseKey(bob)
	if o, ok := c.OperatorByKey(kb); ok {
		t.Fatalf("OperatorByKey(bob's key) = %v: bob is no operator", o)
	}

	bad := []struct{ name, key, says string }{
		{"private key", alicePriv, "that is a private key"},
		{"two lines", alice + "\n" + bob, "one line"},
		{"options", `command="/bin/true" ` + alice, "without options"},
		{"age key", ageB, "that is an age key"},
		{"age secret key", "AGE-SECRET-KEY-1QQQQ", "that is an age key"},
		{"garbage", "ssh-ed25519 AAAA!!!", `ssh key "ssh-ed25519 AAAA!!!"`},
		{"type only", "ssh-ed25519", "not an ssh public key"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.WithOperator(Operator{Name: "bob", Age: ageB, SSH: tt.key}); err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("WithOperator: %v, want an error saying %q", err, tt.says)
			}
			if _, err := c.WithOperatorSSH("alice", tt.key); err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("WithOperatorSSH: %v, want an error saying %q", err, tt.says)
			}
		})
	}

	// One key, two operators: refused however its comment reads.
	if _, err := c.WithOperator(Operator{Name: "bob", Age: ageB, SSH: aliceAgain}); !errors.Is(err, ErrOperator) || !strings.Contains(err.Error(), "alice has that ssh key") {
		t.Errorf("alice's key for bob: %v", err)
	}
	if _, err := Parse([]byte(base + "  - {name: bob, age: " + ageB + ", ssh: " + aliceAgain + "}\n")); err == nil || !strings.Contains(err.Error(), "operators alice and bob have the same ssh key") {
		t.Errorf("meta.yaml with one key for two: %v", err)
	}
	if _, err := Parse([]byte("version: 1\noperators:\n  - {name: alice, age: " + ageA + ", ssh: \"" + ageB + "\"}\n")); err == nil || !strings.Contains(err.Error(), "operator alice: ssh key: that is an age key") {
		t.Errorf("meta.yaml with an age key as ssh key: %v", err)
	}

	// set-ssh: replace, add, unknown operator, another's key.
	if _, err := c.WithOperatorSSH("carol", bob); !errors.Is(err, ErrOperator) {
		t.Errorf("set-ssh of nobody: %v", err)
	}
	withBob, err := c.WithOperator(Operator{Name: "bob", Age: ageB})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withBob.WithOperatorSSH("bob", aliceAgain); !errors.Is(err, ErrOperator) {
		t.Errorf("bob takes alice's key: %v", err)
	}
	next, err := withBob.WithOperatorSSH("bob", " "+bob+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := next.OperatorByKey(kb); !ok || o.Name != "bob" || o.SSH != bob {
		t.Errorf("after set-ssh bob: %+v, %v", o, ok)
	}
	if withBob.Operators[1].SSH != "" {
		t.Errorf("WithOperatorSSH changed the config it was called on")
	}
	out, err := next.Rewrite([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Signers(); len(got) != 2 || got[0].Principal != "alice" || got[1].Principal != "bob" || !signing.Same(got[1].Key, kb) {
		t.Errorf("Signers after a rewrite: %+v\n%s", got, out)
	}
}

// servers: entries are a place ("env", "project/env") or, from version 3,
// a mapping that also says how to reach the server's Docker Engine.
func TestServers(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       map[string]Server
		engines    []Engine
		bad        string
	}{
		{name: "places", yaml: "version: 1\nproject: coop\nservers:\n  s1: prod\n  s2: other/staging\n",
			want: map[string]Server{"s1": {Env: "prod"}, "s2": {Project: "other", Env: "staging"}}},
		{name: "engines", yaml: "version: 3\nproject: coop\nservers:\n  s1: {env: prod, docker_host: 'ssh://root@s1.example.org'}\n  s2: {docker_host: 'tcp://10.0.0.2:2376', docker_cert_path: ~/.docker/s2}\n  s3: prod\n",
			want: map[string]Server{"s1": {Env: "prod", DockerHost: "ssh://root@s1.example.org"}, "s2": {DockerHost: "tcp://10.0.0.2:2376", DockerCertPath: "~/.docker/s2"}, "s3": {Env: "prod"}},
			engines: []Engine{
				{Server: "s1", Project: "coop", Env: "prod", DockerHost: "ssh://root@s1.example.org"},
				{Server: "s2", Project: "coop", Env: "s2", DockerHost: "tcp://10.0.0.2:2376", DockerCertPath: "~/.docker/s2"},
			}},
		{name: "unix", yaml: "version: 3\nservers:\n  local: {env: dev, docker_host: 'unix:///run/docker.sock'}\n",
			want:    map[string]Server{"local": {Env: "dev", DockerHost: "unix:///run/docker.sock"}},
			engines: []Engine{{Server: "local", Env: "dev", DockerHost: "unix:///run/docker.sock"}}},
		{name: "engines need version 3", yaml: "version: 2\nservers:\n  s1: {env: prod, docker_host: 'ssh://s1'}\n", bad: "servers: s1: docker_host and docker_cert_path need version: 3"},
		{name: "scheme", yaml: "version: 3\nservers:\n  s1: {docker_host: 'http://s1:2375'}\n", bad: `servers: s1: docker_host "http://s1:2375": want unix:///path`},
		{name: "no host", yaml: "version: 3\nservers:\n  s1: {docker_host: 'ssh://'}\n", bad: "no host"},
		{name: "no socket", yaml: "version: 3\nservers:\n  s1: {docker_host: 'unix://'}\n", bad: "no socket path"},
		{name: "certs beyond tcp", yaml: "version: 3\nservers:\n  s1: {docker_host: 'ssh://s1', docker_cert_path: /c}\n", bad: "docker_cert_path is for tcp:// hosts"},
		{name: "certs alone", yaml: "version: 3\nservers:\n  s1: {env: prod, docker_cert_path: /c}\n", bad: "docker_cert_path without a docker_host"},
		{name: "bad env", yaml: "version: 1\nservers:\n  s1: 'pr od'\n", bad: "servers: s1:"},
		{name: "a control character in a name", yaml: "version: 3\nservers:\n  \"s1\\e[31m\": {docker_host: 'ssh://s1'}\n", bad: "is not an abra server's name"},
		{name: "a slash in a name", yaml: "version: 1\nservers:\n  a/b: prod\n", bad: "is not an abra server's name"},
		{name: "unknown keys of a newer meta", yaml: "version: 3\nservers:\n  s1: {env: prod, region: eu}\n", want: map[string]Server{"s1": {Env: "prod"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("Parse = %v, want an error saying %q", err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Servers, tt.want) {
				t.Errorf("servers %+v, want %+v", c.Servers, tt.want)
			}
			if got := c.Engines(); !reflect.DeepEqual(got, tt.engines) {
				t.Errorf("engines %+v, want %+v", got, tt.engines)
			}
			// Written back, each entry keeps its form and reads the same.
			again, err := Parse(c.Marshal())
			if err != nil || !reflect.DeepEqual(again.Servers, c.Servers) {
				t.Errorf("marshalled and parsed again: %+v, %v\n%s", again.Servers, err, c.Marshal())
			}
		})
	}
	short, _ := Parse([]byte("version: 1\nservers:\n  s1: coop/prod\n"))
	if m := string(short.Marshal()); !strings.Contains(m, "s1: coop/prod") {
		t.Errorf("a place is written back in the short form:\n%s", m)
	}
}
