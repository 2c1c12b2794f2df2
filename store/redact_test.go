package store

import (
	"strings"
	"testing"
)

// Every event's command line is redacted by the grammar of the program it
// runs: abra's by abra's (from the first word that runs abra, so a sudo or
// an env before it changes nothing), meta's own and any other by meta's
// rules.
func TestRedactCommandChoosesTheGrammar(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abra app secret insert D db v1 -- -s3cr3t", "abra app secret insert D db v1 -- <redacted>"},
		{"/opt/abra-0.11 app secret insert D db v1 -s3cr3t", "/opt/abra-0.11 app secret insert D db v1 <redacted>"},
		{"sudo -u ops abra app secret insert D db v1 s3cr3t", "sudo -u ops abra app secret insert D db v1 <redacted>"},
		{"sudo --password=x abra app deploy D", "sudo --password=<redacted> abra app deploy D"},
		{"meta env set abra.example.com SMTP_PASSWORD=s3cr3t", "meta env set abra.example.com SMTP_PASSWORD=<redacted>"},
		{"deploy-tool --api-token s3cr3t", "deploy-tool --api-token <redacted>"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(redactCommand(strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("redactCommand(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
