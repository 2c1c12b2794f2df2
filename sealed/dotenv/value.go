package dotenv

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// What abra reads. A Line keeps a value byte for byte as the file has it
// (quotes, escapes, abra's "# length=128" modifiers), which is what sops
// round-trips and what `meta env get --raw` prints. abra reads the file
// with github.com/joho/godotenv's parser (a fork of it that also reads the
// modifiers from the comment after a value; abra's own source was not to
// be had where this was written, godotenv's parser.go was), so the value
// it sees follows godotenv's rules, which Value implements once:
//
//   - Unquoted: the text up to a '#' that follows a blank (the last such:
//     "v1 # length=128" is v1), blanks around it trimmed, $NAME and
//     ${NAME} expanded.
//   - 'single quoted': the text between the quotes, as it is.
//   - "double quoted": \n and \r are a line feed and a carriage return,
//     \$ a literal '$', \X any other character X; $NAME and ${NAME} are
//     expanded. After the closing quote only blanks and a # comment (abra's
//     modifiers) may follow.
//
// A quoted value ends at the first quote of its kind that no backslash
// precedes; godotenv then also trims that kind of quote off both ends of
// what it found, so `"\"x\""` reads as `"x\`. Value does the same: it is
// what abra sees.
//
// Expansion: NAME is upper-case letters, digits and '_'. godotenv takes it
// from the keys above it in the file, else from abra's own process
// environment, else "". Value takes the keys above; a name they do not set
// stays as written, since what abra's environment holds is not knowable
// here. `$(` loses its '$', as in godotenv.

// Value returns key's value as abra reads it, and whether key is set. Its
// error names the key and what is wrong, never the value.
func (f File) Value(key string) (string, bool, error) {
	known := map[string]string{}
	for _, l := range f.Lines {
		if l.Comment {
			continue
		}
		v, _, err := value(l.Value, known)
		if l.Key == key {
			if err != nil {
				return "", true, fmt.Errorf("%s: %w", key, err)
			}
			return v, true, nil
		}
		if err == nil {
			known[l.Key] = v
		}
	}
	return "", false, nil
}

// Line returns key's line as the file stores it, "KEY=VALUE", and whether
// key is set.
func (f File) Line(key string) (string, bool) {
	v, ok := f.Get(key)
	if !ok {
		return "", false
	}
	return key + "=" + v, true
}

// ValueOf is the value abra reads from raw, the text after a key's '=' on
// one line, by the rules above; above holds the values of the keys above
// it (nil for none), for $NAME. For readers of files that Parse refuses
// but abra reads, line by line.
func ValueOf(raw string, above map[string]string) (string, error) {
	v, _, err := value(raw, above)
	return v, err
}

// value reads raw, the text after a key's '=', by the rules above; known
// holds the values of the keys above it. comment is what follows the value,
// from its '#' on: abra's modifiers, if any.
func value(raw string, known map[string]string) (v, comment string, err error) {
	raw = strings.TrimLeftFunc(raw, blank)
	if raw == "" {
		return "", "", nil
	}
	q := raw[0]
	if q != '"' && q != '\'' {
		end := len(raw)
		for i := len(raw) - 1; i > 0; i-- {
			if before, _ := utf8.DecodeLastRuneInString(raw[:i]); raw[i] == '#' && blank(before) {
				end = i
				break
			}
		}
		return expand(strings.TrimFunc(raw[:end], blank), known, false), raw[end:], nil
	}
	kind := "double"
	if q == '\'' {
		kind = "single"
	}
	end := -1
	for i := 1; i < len(raw); i++ {
		if raw[i] == q && raw[i-1] != '\\' {
			end = i
			break
		}
	}
	if end < 0 {
		return "", "", fmt.Errorf("%w: the %s quote is not closed on its line", ErrValue, kind)
	}
	comment = strings.TrimLeftFunc(raw[end+1:], blank)
	if comment != "" && comment[0] != '#' {
		return "", "", fmt.Errorf("%w: text after the closing %s quote (only a # comment may follow)", ErrValue, kind)
	}
	inner := strings.Trim(raw[:end], string(q))
	if q == '\'' {
		return inner, comment, nil
	}
	return expand(inner, known, true), comment, nil
}

// expand replaces $NAME and ${NAME} with known values; escapes says the
// text was double-quoted, where backslash escapes count too. Unquoted, a
// backslash counts only before '$'.
func expand(s string, known map[string]string, escapes bool) string {
	if !strings.ContainsAny(s, `$\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (escapes || s[i+1] == '$'):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(s[i])
			}
		case c == '$':
			n, out := reference(s[i:], known)
			b.WriteString(out)
			i += n - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// reference reads the variable reference s starts with ('$' first): how
// many bytes it takes and what stands for them.
func reference(s string, known map[string]string) (int, string) {
	if strings.HasPrefix(s, "$(") {
		return 1, ""
	}
	i := 1
	if i < len(s) && s[i] == '{' {
		i++
	}
	start := i
	for i < len(s) && (s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
		i++
	}
	name := s[start:i]
	if i < len(s) && s[i] == '}' {
		i++
	}
	if name == "" {
		return i, s[:i]
	}
	if v, ok := known[name]; ok {
		return i, v
	}
	return i, s[:i]
}

// blank is godotenv's space: a space or tab, not a line end.
func blank(r rune) bool {
	switch r {
	case ' ', '\t', '\v', '\f', '\r', 0x85, 0xA0:
		return true
	}
	return false
}
