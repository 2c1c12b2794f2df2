package abra

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line string
		want Command
		rec  bool
	}{
		{"abra app deploy matrix.example.com", Command{Action: Deploy, Domain: "matrix.example.com"}, true},
		{"abra app d -f matrix.example.com 4.1.0+v1.94.0", Command{Action: Deploy, Domain: "matrix.example.com", Args: []string{"4.1.0+v1.94.0"}}, true},
		{"abra -d app deploy --chaos matrix.example.com", Command{Action: Deploy, Domain: "matrix.example.com", Chaos: true}, true},
		{"abra a up matrix.example.com -n", Command{Action: Upgrade, Domain: "matrix.example.com"}, true},
		{"abra app rl matrix.example.com 4.0.0+v1.93.0", Command{Action: Rollback, Domain: "matrix.example.com", Args: []string{"4.0.0+v1.93.0"}}, true},
		{"abra app undeploy matrix.example.com", Command{Action: Undeploy, Domain: "matrix.example.com"}, true},
		{"abra app move matrix.example.com swarm2.example.com", Command{Action: Move, Domain: "matrix.example.com", Args: []string{"swarm2.example.com"}}, true},
		{"abra app new matrix-synapse -s swarm1.example.com -D matrix.example.com --secrets", Command{Action: New, Domain: "matrix.example.com", Args: []string{"matrix-synapse"}, Server: "swarm1.example.com", Secrets: true}, true},
		{"abra app new matrix-synapse --server=swarm1.example.com", Command{Action: New, Args: []string{"matrix-synapse"}, Server: "swarm1.example.com"}, false},
		{"abra app rm matrix.example.com -f", Command{Action: Remove, Domain: "matrix.example.com"}, true},
		{"abra app restore matrix.example.com app -s 4a5b", Command{Action: Restore, Domain: "matrix.example.com", Args: []string{"app"}, Snapshot: "4a5b"}, true},
		{"abra app secret generate matrix.example.com db_password v2", Command{Action: SecretGenerate, Domain: "matrix.example.com", Args: []string{"db_password", "v2"}}, true},
		{"abra app s g --all matrix.example.com", Command{Action: SecretGenerate, Domain: "matrix.example.com", All: true}, true},
		{"abra app secret i matrix.example.com db_password v3 hunter2", Command{Action: SecretInsert, Domain: "matrix.example.com", Args: []string{"db_password", "v3", "hunter2"}}, true},
		{"abra app secret rm matrix.example.com db_password", Command{Action: SecretRemove, Domain: "matrix.example.com", Args: []string{"db_password"}}, true},
		{"abra app volume remove matrix.example.com", Command{Action: VolumeRemove, Domain: "matrix.example.com"}, true},
		{"abra app ps matrix.example.com", Command{Action: "ps", Domain: "matrix.example.com"}, false},
		{"abra app secret ls matrix.example.com", Command{Action: "secret ls", Domain: "matrix.example.com"}, false},
		{"abra app ls", Command{Action: "ls"}, false},
		// Flags anywhere, bundled, with values in the word, after --.
		{"abra app -n deploy -d matrix.example.com -fC", Command{Action: Deploy, Domain: "matrix.example.com", Chaos: true}, true},
		{"abra app deploy --chaos=false matrix.example.com", Command{Action: Deploy, Domain: "matrix.example.com"}, true},
		{"abra app deploy -D matrix.example.com", Command{Action: Deploy, Domain: "matrix.example.com"}, true}, // -D: --no-domain-checks, a switch
		// -i: --ignore-env-version, a switch: the version after the domain stays the version.
		{"abra app upgrade -i matrix.example.com 4.1.0+v1.94.0", Command{Action: Upgrade, Domain: "matrix.example.com", Args: []string{"4.1.0+v1.94.0"}}, true},
		{"abra app rollback --ignore-env-version matrix.example.com", Command{Action: Rollback, Domain: "matrix.example.com"}, true},
		{"abra app new -Sssw1.example.com matrix-synapse -D=matrix.example.com", Command{Action: New, Domain: "matrix.example.com", Args: []string{"matrix-synapse"}, Server: "sw1.example.com", Secrets: true}, true},
		{"abra app secret insert matrix.example.com db_password v3 -- -hunter2", Command{Action: SecretInsert, Domain: "matrix.example.com", Args: []string{"db_password", "v3", "-hunter2"}}, true},
		{"abra app secret insert -- matrix.example.com -db v3", Command{Action: SecretInsert, Domain: "matrix.example.com", Args: []string{"-db", "v3"}}, true},
		{"abra app secret", Command{Action: "secret"}, false},
		{"abra app nonsense matrix.example.com", Command{Action: "nonsense", Domain: "matrix.example.com"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := ParseCommand(strings.Fields(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if got.StateChanging() != tt.rec {
				t.Errorf("StateChanging = %v, want %v", got.StateChanging(), tt.rec)
			}
		})
	}
	for _, line := range []string{"abra", "abra recipe ls", "abra server add x", "abra app", "abra -d", "abra deploy x.example.com"} {
		if _, err := ParseCommand(strings.Fields(line)); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}

func TestEnvFileLines(t *testing.T) {
	file := []byte(`# a comment
TYPE=matrix-synapse:4.1.0+v1.94.0
DOMAIN=matrix.example.com
SECRET_DB_PASSWORD_VERSION=v1
SECRET_REGISTRATION_SHARED_SECRET_VERSION="v2" # length=128
`)
	recipe, version, ok := Recipe(file)
	if !ok || recipe != "matrix-synapse" || version != "4.1.0+v1.94.0" {
		t.Fatalf("Recipe = %q %q %v", recipe, version, ok)
	}
	if r, v, ok := Recipe([]byte("RECIPE=custom-html # no version yet\n")); !ok || r != "custom-html" || v != "" {
		t.Fatalf("RECIPE without version = %q %q %v", r, v, ok)
	}
	// As abra reads it (dotenv.ValueOf): a comment after a tab, a key above.
	if r, v, ok := Recipe([]byte("TYPE=custom-html:1.2.0+1\t# pinned\n")); !ok || r != "custom-html" || v != "1.2.0+1" {
		t.Fatalf("TYPE with a comment after a tab = %q %q %v", r, v, ok)
	}
	if got := StackName("x.example.com", []byte("APP=x\nSTACK_NAME=\"${APP}_stack\" # short\n")); got != "x_stack" {
		t.Errorf("STACK_NAME from a key above = %q", got)
	}
	want := []Secret{{"db_password", "v1"}, {"registration_shared_secret", "v2"}}
	if got := Secrets(file); !reflect.DeepEqual(got, want) {
		t.Fatalf("Secrets = %v, want %v", got, want)
	}
	if got := StackName("matrix.example.com", file); got != "matrix_example_com" {
		t.Errorf("StackName = %q", got)
	}
	long := "a-very-long-subdomain-name.of-an-organisation.example.com"
	if got := StackName(long, nil); len(got) != 45 || strings.Contains(got, ".") {
		t.Errorf("StackName(long) = %q", got)
	}
	if got := StackName(long, []byte("STACK_NAME=short\n")); got != "short" {
		t.Errorf("StackName with STACK_NAME = %q", got)
	}
}

func TestStampReplacesTheOlderLine(t *testing.T) {
	once := Stamp([]byte("TYPE=app:1.0.0+1\nDOMAIN=x.example.com"), "1.0.0+1")
	twice := Stamp(once, "1.1.0+2")
	want := "TYPE=app:1.0.0+1\nDOMAIN=x.example.com\n# managed by meta\nOPERATOR_SYNC_VERSION=1.1.0+2\n"
	if string(twice) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", twice, want)
	}
}

// The abra commands whose command line can carry a secret value, as abra's
// command definitions take them (cli/app/secret.go, cli/app/run.go,
// cli/app/cmd.go; see opsync's TestRunLeaksNoSecretValue for the list):
// `app secret insert <domain> <secret> <version> <data>`, `app run <domain>
// <service> <cmd> [<args>...]`, `app cmd <domain> [<service>] <cmd> [--
// <args>...]`. Redact keeps what names something and redacts the rest by
// abra's grammar, failing closed where it cannot be sure.
func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		// secret insert: DATA however typed.
		{"abra app secret insert D db v1 s3cr3t", "abra app secret insert D db v1 <redacted>"},
		// abra's --ignore-env-version (-i) is a switch of deploys: nothing after it is a secret.
		{"abra app upgrade -i D 4.1.0+v1.94.0", "abra app upgrade -i D 4.1.0+v1.94.0"},
		{"abra app deploy --ignore-env-version D", "abra app deploy --ignore-env-version D"},
		{"abra a s i D db v1 s3cr3t", "abra a s i D db v1 <redacted>"},
		{"abra app secrets i D db v1 s3cr3t", "abra app secrets i D db v1 <redacted>"},
		{"abra app secret insert D db v1 -- -s3cr3t", "abra app secret insert D db v1 -- <redacted>"},
		{"abra app secret insert D db v1 -s3cr3t", "abra app secret insert D db v1 <redacted>"},
		{"abra app secret insert D db v1 --s3cr3t", "abra app secret insert D db v1 <redacted>"},
		{"abra app secret insert D db v1 -", "abra app secret insert D db v1 <redacted>"},
		{"abra app secret insert -- D db v1 -s3cr3t", "abra app secret insert -- D db v1 <redacted>"},
		{"abra app secret insert D -- db v1 s3cr3t --trim", "abra app secret insert D -- db v1 <redacted> <redacted>"},
		{"abra app secret insert D db v1 s3cr3t --trim", "abra app secret insert D db v1 <redacted> --trim"},
		{"abra app secret insert --trim D db v1 s3cr3t more", "abra app secret insert --trim D db v1 <redacted> <redacted>"},
		// a word missing: the secret may stand where the version should
		{"abra app secret insert D a16=v1 SUPERSECRET16", "abra app secret insert D <redacted> <redacted>"},
		{"abra app secret insert D SUPERSECRET16", "abra app secret insert D <redacted>"},
		{"abra app secret insert -f D db v1 ./pass.txt", "abra app secret insert -f D db v1 <redacted>"},
		{"abra app secret insert -ftC D db v1 s3cr3t", "abra app secret insert -ftC D db v1 <redacted>"},
		{"abra app secret insert -ft=false D db v1 s3cr3t", "abra app secret insert -ft=false D db v1 <redacted>"},
		{"abra app secret insert --trim=s3cr3t D db v1", "abra app secret insert <redacted> <redacted> <redacted> <redacted>"},
		{"abra app secret insert -t=s3cr3t D db v1", "abra app secret insert <redacted> <redacted> <redacted> <redacted>"},
		{"abra app secret insert -tx D db v1 s3cr3t", "abra app secret insert <redacted> <redacted> <redacted> <redacted> <redacted>"},
		{"abra app secret insert D --password s3cr3t db v1", "abra app secret insert D <redacted> <redacted> <redacted> <redacted>"},
		{"abra app secret insert D db v1 KEY=s3cr3t", "abra app secret insert D db v1 <redacted>"},
		{"abra -d app -n secret -o insert D db v1 s3cr3t -h", "abra -d app -n secret -o insert D db v1 <redacted> -h"},
		{"abra -dno app secret insert D db v1 s3cr3t", "abra -dno app secret insert D db v1 <redacted>"},
		{"/usr/local/bin/abra app secret insert D db v1 s3cr3t", "/usr/local/bin/abra app secret insert D db v1 <redacted>"},
		// A word meta cannot place makes the rest unsure: only flag and
		// command names survive it.
		{"abra --weird app secret insert D db v1 s3cr3t --trim", "abra <redacted> app secret insert <redacted> <redacted> <redacted> <redacted> --trim"},
		{"abra app secret add D db v1 s3cr3t", "abra app secret <redacted> <redacted> <redacted> <redacted> <redacted>"},
		{"abra app sekret insert D db v1 s3cr3t", "abra app <redacted> <redacted> <redacted> <redacted> <redacted> <redacted>"},
		// Commands meta does not know word by word keep the domain only.
		{"abra app run D app -- psql -c s3cr3t", "abra app run D <redacted> -- <redacted> <redacted> <redacted>"},
		{"abra app run -t D app sh", "abra app run <redacted> <redacted> <redacted> <redacted>"},
		{"abra app cmd D app set_pass -- s3cr3t", "abra app cmd D <redacted> <redacted> -- <redacted>"},
		{"abra app secret ls D", "abra app secret ls D"},
		{"abra app ps D", "abra app ps D"},
		// Outside abra app, no argument is kept.
		{"abra server add host.example.com root 2222", "abra server <redacted> <redacted> <redacted> <redacted>"},
		{"abra -d recipe ls", "abra -d recipe <redacted>"},
		{"abra", "abra"},
		// What names something stays.
		{"abra app deploy D 1.2.0+3.4", "abra app deploy D 1.2.0+3.4"},
		{"abra app d -fCDc D", "abra app d -fCDc D"},
		{"abra app deploy D 1.2.0+3.4 extra", "abra app deploy D 1.2.0+3.4 <redacted>"},
		{"abra app new matrix-synapse 4.0.0+v1.93.0 -s sw1 --domain=D -SP", "abra app new matrix-synapse 4.0.0+v1.93.0 -s sw1 --domain=D -SP"},
		{"abra app new matrix-synapse -s", "abra app new matrix-synapse -s"},
		{"abra app restore D app -s 4a5b --target=/x", "abra app restore D app -s 4a5b --target=/x"},
		{"abra app secret generate D db v2 -m", "abra app secret generate D db v2 -m"},
		{"abra app s g --all D", "abra app s g --all D"},
		{"abra app secret rm D db", "abra app secret rm D db"},
		{"abra app volume remove D data -f", "abra app volume remove D data -f"},
		{"abra app move D swarm2.example.com", "abra app move D swarm2.example.com"},
		{"abra app undeploy -p D", "abra app undeploy -p D"},
		{"abra app rm -f D", "abra app rm -f D"},
		// Redacted words are unsure, even where they were typed.
		{"abra app secret insert D <redacted> v1 s3cr3t", "abra app secret insert D <redacted> <redacted> <redacted>"},
		// After it, a flag's value in the word may be what abra makes of it.
		{"abra app new --password --domain=s3cr3t -s s3cr3t -ss3cr3t -S", "abra app new <redacted> <redacted> -s <redacted> <redacted> -S"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			in := strings.Fields(tt.in)
			orig := slices.Clone(in)
			out, isAbra := Redact(in)
			if got := strings.Join(out, " "); got != tt.want || !isAbra {
				t.Errorf("Redact(%q)\n got %q (abra: %v)\nwant %q", tt.in, got, isAbra, tt.want)
			}
			if !slices.Equal(in, orig) {
				t.Error("Redact changed its argument")
			}
			if again, _ := Redact(out); !slices.Equal(again, out) {
				t.Errorf("Redact again gives %q", again)
			}
		})
	}
	for _, line := range [][]string{nil, {"meta", "env", "set", "D", "K=V"}, {"sudo", "abra", "app", "secret", "insert", "D", "db", "v1", "x"}} {
		if out, isAbra := Redact(line); isAbra || !slices.Equal(out, line) {
			t.Errorf("Redact(%q) = %q, %v: not an abra line", line, out, isAbra)
		}
	}
}

// Whatever surrounds it, a value after VERSION of a secret insert is never
// kept, and Redact gives the same line applied twice. The fuzzer builds the
// line from words abra takes, words it refuses, and the value, which may
// look like anything: only a value abra itself reads as insert's flags, or
// as "--", not after "--", may stay (abra then inserts no value).
func FuzzRedact(f *testing.F) {
	f.Add("s3cr3t", uint64(0), uint8(0))
	f.Add("-s3cr3t", uint64(1), uint8(1))
	f.Add("--s3cr3t=x", uint64(0x2143), uint8(2))
	f.Add("-ft", uint64(0x55), uint8(3))
	f.Add("--", uint64(0x99), uint8(0))
	f.Add("<redacted>", uint64(7), uint8(4))
	pieces := []string{"-d", "-n", "--debug", "-f", "--trim", "-tC", "--chaos=false", "--", "-x", "--file=maybe", "-", "extra", "<redacted>"}
	insert := specOf(SecretInsert)
	f.Fuzz(func(t *testing.T, value string, mix uint64, at uint8) {
		if strings.ContainsAny(value, " \t\n") || value == "" {
			return
		}
		// abra app secret insert D db v1, with up to 8 pieces put in at
		// places mix picks, then the value somewhere after v1.
		line := []string{"abra", "app", "secret", "insert", "D", "db", "v1"}
		for n := 0; n < 8 && mix != 0; n++ {
			p := pieces[mix%uint64(len(pieces))]
			mix /= uint64(len(pieces))
			i := 1 + int(mix%uint64(len(line)))
			mix /= uint64(len(line))
			line = slices.Insert(line, i, p)
		}
		after := slices.Index(line, "v1") + 1
		i := after + int(at)%(len(line)-after+1)
		line = slices.Insert(line, i, value)
		out, _ := Redact(line)
		if len(out) != len(line) {
			t.Fatalf("Redact(%q) = %q: not word for word", line, out)
		}
		if again, _ := Redact(out); !slices.Equal(again, out) {
			t.Fatalf("Redact(%q) = %q, and again %q", line, out, again)
		}
		_, _, isFlag := readFlag(value, append(slices.Clone(insert.flags), globalFlags...))
		readAsFlag := strings.HasPrefix(value, "-") && value != "-" && (isFlag || value == "--") && !slices.Contains(line[:i], "--")
		if out[i] == value && value != "<redacted>" && !readAsFlag {
			t.Fatalf("Redact(%q) = %q keeps the value", line, out)
		}
	})
}

func specOf(a Action) *appSpec {
	for i := range appSpecs {
		if appSpecs[i].name == a {
			return &appSpecs[i]
		}
	}
	panic("no spec for " + a)
}

// Contexts are found where the docker CLI keeps them, by the hash of their
// name; what is not a context is said to be so.
func TestFindDockerContext(t *testing.T) {
	home := t.TempDir()
	write := func(name, body string, tls bool) {
		sum := sha256.Sum256([]byte(name))
		id := hex.EncodeToString(sum[:])
		dir := filepath.Join(home, ".docker", "contexts", "meta", id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if tls {
			d := filepath.Join(home, ".docker", "contexts", "tls", id, "docker")
			os.MkdirAll(d, 0o700)
			os.WriteFile(filepath.Join(d, "ca.pem"), []byte("ca"), 0o600)
		}
	}
	write("server1.example.org", `{"Name":"server1.example.org","Metadata":{},"Endpoints":{"docker":{"Host":"ssh://root@server1.example.org","SkipTLSVerify":false}}}`, false)
	write("tls.example.org", `{"Name":"tls.example.org","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://10.0.0.3:2376","SkipTLSVerify":false}}}`, true)
	write("broken", `{"Name":`, false)
	write("other", `{"Name":"someone-else","Endpoints":{"docker":{"Host":"unix:///x"}}}`, false)
	env := func(k string) string { return map[string]string{"HOME": home}[k] }
	tests := []struct {
		name, host, certs, bad string
	}{
		{name: "server1.example.org", host: "ssh://root@server1.example.org"},
		{name: "tls.example.org", host: "tcp://10.0.0.3:2376", certs: "tls"},
		{name: "nowhere", bad: `no docker context "nowhere"`},
		{name: "broken", bad: `docker context "broken"`},
		{name: "other", bad: `names "someone-else"`},
	}
	for _, tt := range tests {
		c, err := FindDockerContext(tt.name, env)
		switch {
		case tt.bad != "":
			if err == nil || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("%s: %+v, %v; want an error saying %q", tt.name, c, err, tt.bad)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case c.Host != tt.host || (tt.certs != "") != (c.CertPath != ""):
			t.Errorf("%s: %+v", tt.name, c)
		}
	}
	if _, err := FindDockerContext("nowhere", env); !errors.Is(err, ErrNoContext) {
		t.Errorf("a missing context: %v", err)
	}
	// DOCKER_CONFIG is where the CLI looks first.
	if _, err := FindDockerContext("server1.example.org", func(k string) string {
		return map[string]string{"HOME": "/nonexistent", "DOCKER_CONFIG": filepath.Join(home, ".docker")}[k]
	}); err != nil {
		t.Errorf("with DOCKER_CONFIG: %v", err)
	}
}

// A context the docker CLI itself made (as `abra server add` does) is
// found.
func TestFindDockerContextTheCLIMade(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker CLI here")
	}
	cfg := t.TempDir()
	cmd := exec.Command(docker, "context", "create", "server2.example.org", "--docker", "host=ssh://deploy@server2.example.org:2222")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker context create: %v\n%s", err, out)
	}
	c, err := FindDockerContext("server2.example.org", func(k string) string { return map[string]string{"DOCKER_CONFIG": cfg}[k] })
	if err != nil || c.Host != "ssh://deploy@server2.example.org:2222" || c.CertPath != "" {
		t.Fatalf("%+v, %v", c, err)
	}
}
