package dotenv

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseRefusesWithoutShowingValues(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
		msg      string
	}{
		{"no equals sign", "A=1\nsecret-value-here\n", ErrSyntax, "f line 2"},
		{"twice the same key", "A=1\nB=2\nA=secret\n", ErrSyntax, "A is already set on line 1"},
		{"sops metadata", "A=x\nsops_mac=ENC[AES256_GCM,data:x]\n", ErrSealed, "line 2 holds sops metadata"},
		{"encrypted value", "A=ENC[AES256_GCM,data:abc,iv:x,tag:y,type:str]\n", ErrSealed, "encrypted value"},
		{"space in key", "MY KEY=secret\n", ErrKey, "f line 1"},
		{"export prefix", "export A=secret\n", ErrKey, "f line 1"},
		{"clear-text suffix", "TOKEN_unencrypted=secret\n", ErrKey, "unencrypted"},
		{"sops prefix", "sops_thing=secret\n", ErrKey, "metadata"},
		{"leading digit", "1A=secret\n", ErrKey, "f line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f", []byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "secret") && !strings.Contains(tt.msg, "secret") {
				t.Errorf("error shows a value: %q", err)
			}
		})
	}
}

func TestRoundTripKeepsOrderAndComments(t *testing.T) {
	in := "## Domain\r\nDOMAIN=app.example.org\n\n#SMTP_HOST=commented\nSECRET_KEY_BASE_VERSION=v1 # length=128\nQUOTED=\"a b\"\nMULTI=one\\ntwo\nEMPTY=\n"
	f, err := Parse("f", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := "## Domain\nDOMAIN=app.example.org\n#SMTP_HOST=commented\nSECRET_KEY_BASE_VERSION=v1 # length=128\nQUOTED=\"a b\"\nMULTI=one\\ntwo\nEMPTY=\n"
	if got := string(f.Bytes()); got != want {
		t.Fatalf("round trip:\n%s\nwant\n%s", got, want)
	}
	if v, _ := f.Get("SECRET_KEY_BASE_VERSION"); v != "v1 # length=128" {
		t.Errorf("trailing modifier: %q", v)
	}
}

func TestSetUnsetDiff(t *testing.T) {
	old, _ := Parse("f", []byte("# c\nA=1\nB=2\nC=3\n"))
	next := old.Clone()
	if err := next.Set("B", "changed"); err != nil {
		t.Fatal(err)
	}
	next.Set("D", "4")
	if !next.Unset("A") || next.Unset("nope") {
		t.Fatal("Unset reports wrongly")
	}
	if err := next.Set("E", "two\nlines"); err == nil {
		t.Error("a raw line break was accepted")
	}
	if got := string(next.Bytes()); got != "# c\nB=changed\nC=3\nD=4\n" {
		t.Errorf("after changes:\n%s", got)
	}
	if got := string(old.Bytes()); got != "# c\nA=1\nB=2\nC=3\n" {
		t.Errorf("Clone shares lines with the original:\n%s", got)
	}
	c := Diff(old, next)
	if !slices.Equal(c.Added, []string{"D"}) || !slices.Equal(c.Changed, []string{"B"}) || !slices.Equal(c.Removed, []string{"A"}) {
		t.Errorf("Diff = %+v", c)
	}
	if !Diff(old, old).Empty() {
		t.Error("a file differs from itself")
	}
}
