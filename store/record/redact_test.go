package record

import (
	"slices"
	"strings"
	"testing"
)

func TestRedactCommand(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"abra app secret insert app.example.org db_password v1 s3cr3t", "abra app secret insert app.example.org db_password v1 <redacted>"},
		{"abra a s i app.example.org db_password v1 s3cr3t", "abra a s i app.example.org db_password v1 <redacted>"},
		{"abra app secret insert --trim app.example.org db_password v1 s3cr3t extra", "abra app secret insert --trim app.example.org db_password v1 <redacted> <redacted>"},
		{"abra app secret insert -f app.example.org db_password v1 ./pass.txt", "abra app secret insert -f app.example.org db_password v1 <redacted>"},
		{"abra app secret generate app.example.org --all", "abra app secret generate app.example.org --all"},
		{"abra app deploy app.example.org 1.2.0+3.4", "abra app deploy app.example.org 1.2.0+3.4"},
		{"meta env set app.example.org SMTP_PASSWORD=hunter2 DOMAIN=x.org", "meta env set app.example.org SMTP_PASSWORD=<redacted> DOMAIN=<redacted>"},
		{"tool --password hunter2 --db-token=abc --secret-version v2 --password-file /x", "tool --password <redacted> --db-token=<redacted> --secret-version v2 --password-file /x"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			in := strings.Fields(tt.in)
			orig := slices.Clone(in)
			got := strings.Join(RedactCommand(in), " ")
			if got != tt.want {
				t.Errorf("RedactCommand(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if !slices.Equal(in, orig) {
				t.Error("RedactCommand changed its argument")
			}
		})
	}
}
