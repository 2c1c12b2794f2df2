// Package dotenv reads and writes the env files abra keeps per app, in the
// subset of dotenv syntax that sops's dotenv store round-trips: KEY=VALUE
// lines and # comments, one per line, in order. It never puts a value into
// an error message, so that a bad line cannot leak a secret into a log.
package dotenv

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Errors callers branch on.
var (
	// ErrSyntax: the input is not dotenv as abra and sops read it.
	ErrSyntax = errors.New("not a dotenv file")
	// ErrSealed: the input is already a sops-encrypted file.
	ErrSealed = errors.New("already sops-encrypted")
	// ErrKey: a key name cannot be stored.
	ErrKey = errors.New("bad key")
	// ErrValue: a value a dotenv file cannot hold.
	ErrValue = errors.New("bad value")
)

// Line is one line of an env file: a comment (Comment true, Value holding
// the text after '#') or a KEY=VALUE assignment.
type Line struct {
	Comment bool   `json:"comment,omitempty"`
	Key     string `json:"key,omitempty"`
	Value   string `json:"value"`
}

// File is an env file's lines in order. Blank lines are not kept: sops's
// dotenv format has no way to hold them.
type File struct {
	Lines []Line `json:"lines"`
}

// sopsPrefix starts the keys sops keeps its metadata under; a file with such
// keys is encrypted already, and a plain file may not use them.
const sopsPrefix = "sops_"

// unencryptedSuffix is the suffix sops leaves in clear text by default: a
// key with it would put its value into git unencrypted.
const unencryptedSuffix = "_unencrypted"

// Parse reads an env file; name says which file in errors. Windows line
// ends are accepted and dropped. Errors name the line, never its value.
func Parse(name string, data []byte) (File, error) { return ParseFrom(name, data, 1) }

// ParseFrom is Parse of data that starts at line first of what the
// operator sees, for the numbers in errors: the part below a header.
func ParseFrom(name string, data []byte, first int) (File, error) {
	var f File
	seen := map[string]int{}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := first + i
		line := strings.TrimSuffix(string(raw), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			f.Lines = append(f.Lines, Line{Comment: true, Value: line[1:]})
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			return File{}, fmt.Errorf("%s line %d: %w: expected KEY=VALUE or a # comment", name, n, ErrSyntax)
		}
		key, value := line[:eq], line[eq+1:]
		if strings.HasPrefix(key, sopsPrefix) {
			if key == "sops_mac" || key == "sops_version" || strings.HasPrefix(key, "sops_age__") {
				return File{}, fmt.Errorf("%s: %w (line %d holds sops metadata); give meta the decrypted file, e.g. from `sops decrypt`", name, ErrSealed, n)
			}
		}
		if strings.HasPrefix(value, "ENC[AES256_GCM,") {
			return File{}, fmt.Errorf("%s: %w (line %d holds an encrypted value); give meta the decrypted file", name, ErrSealed, n)
		}
		if rest, ok := strings.CutPrefix(key, "export "); ok && ValidKey(strings.TrimSpace(rest)) == nil {
			// godotenv, and so abra, would read it; sops's dotenv store
			// would keep "export " as part of the key.
			return File{}, fmt.Errorf("%s line %d: %w: %s: drop the export prefix (abra reads the line without it)", name, n, ErrKey, strings.TrimSpace(rest))
		}
		if err := ValidKey(key); err != nil {
			return File{}, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		if prev, ok := seen[key]; ok {
			return File{}, fmt.Errorf("%s line %d: %w: %s is already set on line %d; keep one", name, n, ErrSyntax, key, prev)
		}
		seen[key] = n
		f.Lines = append(f.Lines, Line{Key: key, Value: value})
	}
	return f, nil
}

// ValidKey checks that key can be stored and read back by abra and sops:
// letters, digits, '_', '.' and '-', not starting with a digit, not sops's
// metadata prefix and not its clear-text suffix.
func ValidKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrKey)
	}
	for i, c := range key {
		ok := c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-')
		if !ok {
			return fmt.Errorf("%w: %q: use letters, digits, '_', '.' and '-', not starting with a digit", ErrKey, key)
		}
	}
	if strings.HasPrefix(key, sopsPrefix) {
		return fmt.Errorf("%w: %q: sops keeps its own metadata under %q", ErrKey, key, sopsPrefix)
	}
	if strings.HasSuffix(key, unencryptedSuffix) {
		return fmt.Errorf("%w: %q: sops would store a key ending in %q unencrypted", ErrKey, key, unencryptedSuffix)
	}
	return nil
}

// Bytes renders f as the plain env file abra reads. A value holding a
// newline (which sops may hand back) is written with "\n", as sops does.
func (f File) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range f.Lines {
		if l.Comment {
			b.WriteString("#" + l.Value + "\n")
			continue
		}
		b.WriteString(l.Key + "=" + strings.ReplaceAll(l.Value, "\n", `\n`) + "\n")
	}
	return b.Bytes()
}

// Clone is a copy of f that can be changed without changing f.
func (f File) Clone() File {
	return File{Lines: append([]Line(nil), f.Lines...)}
}

// Get returns the value of key and whether it is set.
func (f File) Get(key string) (string, bool) {
	for _, l := range f.Lines {
		if !l.Comment && l.Key == key {
			return l.Value, true
		}
	}
	return "", false
}

// Keys are the file's keys in file order.
func (f File) Keys() []string {
	var keys []string
	for _, l := range f.Lines {
		if !l.Comment {
			keys = append(keys, l.Key)
		}
	}
	return keys
}

// Set changes key's value where it stands, or appends it at the end.
func (f *File) Set(key, value string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if strings.ContainsAny(value, "\n\r") {
		return fmt.Errorf("%w: the value of %s holds a line break; dotenv values are one line (write \\n)", ErrValue, key)
	}
	for i, l := range f.Lines {
		if !l.Comment && l.Key == key {
			f.Lines[i].Value = value
			return nil
		}
	}
	f.Lines = append(f.Lines, Line{Key: key, Value: value})
	return nil
}

// Unset removes key and reports whether it was set.
func (f *File) Unset(key string) bool {
	for i, l := range f.Lines {
		if !l.Comment && l.Key == key {
			f.Lines = append(f.Lines[:i:i], f.Lines[i+1:]...)
			return true
		}
	}
	return false
}

// Changes are the names of keys that differ between two versions of a file.
type Changes struct {
	Added   []string `json:"added"`
	Changed []string `json:"changed"`
	Removed []string `json:"removed"`
}

// Empty says nothing changed.
func (c Changes) Empty() bool {
	return len(c.Added) == 0 && len(c.Changed) == 0 && len(c.Removed) == 0
}

// Diff names the keys added, changed and removed from old to new, each list
// sorted. Values are compared as stored, never reported.
func Diff(old, new File) Changes { return changes(old.stored(), new.stored()) }

// keyed is a file's keys in order, each with what a comparison compares.
type keyed struct {
	keys []string
	vals map[string]string
}

func (f File) stored() keyed {
	k := keyed{vals: map[string]string{}}
	for _, l := range f.Lines {
		if !l.Comment {
			k.keys = append(k.keys, l.Key)
			k.vals[l.Key] = l.Value
		}
	}
	return k
}

func changes(old, new keyed) Changes {
	c := Changes{Added: []string{}, Changed: []string{}, Removed: []string{}}
	for _, k := range new.keys {
		v, ok := old.vals[k]
		switch {
		case !ok:
			c.Added = append(c.Added, k)
		case v != new.vals[k]:
			c.Changed = append(c.Changed, k)
		}
	}
	for _, k := range old.keys {
		if _, ok := new.vals[k]; !ok {
			c.Removed = append(c.Removed, k)
		}
	}
	sort.Strings(c.Added)
	sort.Strings(c.Changed)
	sort.Strings(c.Removed)
	return c
}
