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
