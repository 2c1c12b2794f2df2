package abra

import (
	"reflect"
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
	for _, line := range []string{"abra", "abra recipe ls", "abra server add x", "abra app"} {
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
