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
		{"export prefix", "export A=secret\n", ErrKey, "f line 1: bad key: A: drop the export prefix"},
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

// Value reads a value as abra does: godotenv's rules (see value.go), each
// case worked out from its parser. Every case is one line of a file whose
// keys above it are D=app.example.org and LOWER=x.
func TestValueIsWhatAbraReads(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"plain", `plain`, `plain`},
		{"empty", ``, ``},
		{"blanks around", "  spaced value \t", `spaced value`},
		{"abra's modifier", `v1 # length=128`, `v1`},
		{"a tab before the comment", "v1\t# generate", `v1`},
		{"the last comment counts", `v1 # length=32 # generate`, `v1 # length=32`},
		{"a hash inside a word", `a#b`, `a#b`},
		{"a hash first", `#notacomment`, `#notacomment`},
		{"a hash after a non-ASCII letter", `à#b`, `à#b`},
		{"non-ASCII before a comment", `café # x`, `café`},
		{"quotes inside an unquoted value", `say "hi" now`, `say "hi" now`},
		{"no escapes unquoted", `back\nslash`, `back\nslash`},
		{"double quotes", `"a b"`, `a b`},
		{"double quotes and a modifier", `"a b" # length=12`, `a b`},
		{"double-quoted line feed", `"line\nbreak"`, "line\nbreak"},
		{"double-quoted carriage return", `"a\rb"`, "a\rb"},
		{"double-quoted escaped quotes", `"say \"hi\" now"`, `say "hi" now`},
		{"double-quoted backslash", `"back\\slash"`, `back\slash`},
		{"other escapes drop the backslash", `"tab\t"`, `tabt`},
		{"a hash inside double quotes", `"a # b"`, `a # b`},
		{"godotenv trims escaped quotes at the ends", `"\"x\""`, `"x\`},
		{"single quotes", `'a b' # generate`, `a b`},
		{"single quotes keep escapes", `'line\nbreak'`, `line\nbreak`},
		{"single quotes keep an escaped quote", `'it\'s'`, `it\'s`},
		{"blank before a quote", `  "a"`, `a`},
		{"expands a key above", `https://${D}/x`, `https://app.example.org/x`},
		{"expands without braces", `$D`, `app.example.org`},
		{"expands inside double quotes", `"at ${D}"`, `at app.example.org`},
		{"no expansion in single quotes", `'${D}'`, `${D}`},
		{"an escaped dollar in double quotes", `"\${D}"`, `${D}`},
		{"an escaped dollar unquoted", `\$D`, `$D`},
		{"a name abra takes from its environment stays", `$NOPE and ${NOPE}`, `$NOPE and ${NOPE}`},
		{"lower-case is no name", `$LOWER-$lower`, `x-$lower`},
		{"a lone dollar", `5$`, `5$`},
		{"command substitution loses its dollar", `$(date)`, `(date)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f", []byte("D=app.example.org\nLOWER=x\nK="+tt.raw+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := f.Value("K")
			if err != nil || !ok || got != tt.want {
				t.Errorf("Value(K=%s) = %q, %v, %v; want %q", tt.raw, got, ok, err, tt.want)
			}
			if line, _ := f.Line("K"); line != "K="+tt.raw {
				t.Errorf("Line = %q, want the line as stored", line)
			}
		})
	}
}

// A value abra cannot read is refused by name, without the value; a key
// below it still reads, and one below it expands without it.
func TestValueRefusesWithoutShowingIt(t *testing.T) {
	tests := []struct{ name, raw, says string }{
		{"an open double quote", `"PLANT-secret`, "K: bad value: the double quote is not closed on its line"},
		{"an open single quote", `'PLANT-secret`, "K: bad value: the single quote is not closed on its line"},
		{"text after the quote", `"PLANT" secret`, "K: bad value: text after the closing double quote"},
		{"an escaped closing quote", `"PLANT\"`, "not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f", []byte("K="+tt.raw+"\nNEXT=ok $K\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, ok, err := f.Value("K")
			if !ok || !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Value: %v, %v; want ErrValue saying %q", ok, err, tt.says)
			}
			if strings.Contains(err.Error(), "PLANT") {
				t.Errorf("the error shows the value: %v", err)
			}
			if v, _, err := f.Value("NEXT"); v != "ok $K" || err != nil {
				t.Errorf("the key below: %q, %v", v, err)
			}
		})
	}
	f, _ := Parse("f", []byte("A=1\n"))
	if _, ok, err := f.Value("MISSING"); ok || err != nil {
		t.Errorf("a missing key: %v, %v", ok, err)
	}
	if _, ok := f.Line("MISSING"); ok {
		t.Error("a missing key has a line")
	}
}
