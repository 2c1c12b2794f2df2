// Package tokens keeps the read tokens of a hub's HTTP API: it makes them,
// keeps only their SHA-256 hashes in a file of the hub's clone, checks the
// token a request presents against that file in constant time, and notices
// at once, on a running hub, a token created or removed by another process.
//
// The list lives in the clone (.git/meta/tokens.json, mode 0600), not in
// meta.yaml: a token admits a client to one hub, which is a decision of
// whoever runs that hub, not an event of the shared log. In git it would
// reach every clone and the forge, and revoking one would need a push that
// every hub then has to pull before it stops working; here `meta token rm`
// takes effect on the next request.
package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
)

// Prefix starts every token, so that people and secret scanners can tell
// one when they see it: a token is Prefix and 52 characters of [a-z2-7],
// 256 random bits in lower-case base32.
const Prefix = "meta_"

// tokenLen is the length of a whole token.
var tokenLen = len(Prefix) + encoding.EncodedLen(32)

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Errors callers branch on.
var (
	ErrName     = errors.New("invalid token name")
	ErrExists   = errors.New("token exists")
	ErrNotFound = errors.New("no such token")
	// ErrNone is a check against a file that holds no token at all.
	ErrNone = errors.New("no tokens")
	// ErrFile is a tokens file that cannot be read as one.
	ErrFile = errors.New("unreadable tokens file")
)

// version is the tokens file's format.
const version = 1

// Token is one token as the file keeps it: never the token itself.
type Token struct {
	Name string `json:"name"`
	// SHA256 is the hex SHA-256 of the whole token. The tokens are 256
	// random bits, so a fast hash is as hard to invert as a slow one.
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
}

type file struct {
	Version int     `json:"version"`
	Tokens  []Token `json:"tokens"`
}

// ValidName says whether name may name a token: 1 to 64 lower-case
// letters, digits, '-', '_' and '.'.
func ValidName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w %q: 1 to 64 characters", ErrName, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w %q: only lower-case letters, digits, '-', '_' and '.'", ErrName, name)
		}
	}
	return nil
}

// Create makes a token named name, keeps its hash in the file at path, and
// returns the token: the only time anyone sees it.
func Create(path, name string, now time.Time) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	var secret [32]byte
	rand.Read(secret[:])
	token := Prefix + strings.ToLower(encoding.EncodeToString(secret[:]))
	err := change(path, func(ts []Token) ([]Token, error) {
		if slices.ContainsFunc(ts, func(t Token) bool { return t.Name == name }) {
			return nil, fmt.Errorf("%w: %s already names a token; remove it first (meta token rm %s) or choose another name", ErrExists, name, name)
		}
		return append(ts, Token{Name: name, SHA256: hash(token), Created: now.UTC().Truncate(time.Second)}), nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// Remove takes the token named name out of the file: a hub refuses it
// from its next request on.
func Remove(path, name string) error {
	return change(path, func(ts []Token) ([]Token, error) {
		i := slices.IndexFunc(ts, func(t Token) bool { return t.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%w named %q (meta token ls lists them)", ErrNotFound, name)
		}
		return slices.Delete(ts, i, i+1), nil
	})
}

// Info is a token as `meta token ls` shows it.
type Info struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// LastUsed is when a hub last accepted it, to within a minute; nil
	// when never (or not since the hub last wrote it down).
	LastUsed *time.Time `json:"last_used"`
}

// List says which tokens the file at path holds, oldest first.
func List(path string) ([]Info, error) {
	ts, _, err := read(path)
	if err != nil {
		return nil, err
	}
	used := readUsed(usedPath(path))
	out := make([]Info, 0, len(ts))
	for _, t := range ts {
		i := Info{Name: t.Name, Created: t.Created}
		if u, ok := used[t.SHA256]; ok {
			i.LastUsed = &u
		}
		out = append(out, i)
	}
	return out, nil
}

// change rewrites the file at path with what f makes of its tokens, under
// a lock, so that two `meta token` commands at once both count.
func change(path string, f func([]Token) ([]Token, error)) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("tokens: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	ts, _, err := read(path)
	if err != nil {
		return err
	}
	if ts, err = f(ts); err != nil {
		return err
	}
	data, err := json.MarshalIndent(file{Version: version, Tokens: ts}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(afero.NewOsFs(), path, append(data, '\n'), 0o600)
}

// read reads the tokens file at path, and what the file was when read
// (nil when there is none: no tokens).
func read(path string) ([]Token, os.FileInfo, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w %s: %w", ErrFile, path, err)
	}
	defer f.Close()
	// The file as opened: a rename over it after this is seen next time.
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%w %s: %w", ErrFile, path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%w %s: %w", ErrFile, path, err)
	}
	var out file
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, nil, fmt.Errorf("%w %s: not JSON: %w", ErrFile, path, err)
	}
	if out.Version != version {
		return nil, nil, fmt.Errorf("%w %s: format version %d, this meta reads %d", ErrFile, path, out.Version, version)
	}
	for _, t := range out.Tokens {
		if ValidName(t.Name) != nil || len(t.SHA256) != 2*sha256.Size || strings.Trim(t.SHA256, "0123456789abcdef") != "" {
			return nil, nil, fmt.Errorf("%w %s: token %q is not a name and a hex SHA-256", ErrFile, path, t.Name)
		}
	}
	return out.Tokens, fi, nil
}

func hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// equal compares two hashes in constant time; a variable so that a test
// can count the comparisons.
var equal = func(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// Checker checks tokens against the file at its path, reading the file
// again whenever it changed: a stat per check, so that a token removed by
// `meta token rm` stops working at the next request.
type Checker struct {
	path string
	now  func() time.Time

	mu     sync.Mutex
	fi     os.FileInfo // the file last read; nil: there was none
	read   time.Time   // when it was read
	hashes [][]byte
	names  []string
	// used are when each token (by hash) was last accepted; written to
	// the used file at most once a minute per token.
	used, written map[string]time.Time
}

// NewChecker reads the file at path; none is no tokens. An unreadable or
// malformed file is an error (ErrFile), and the Checker returned with it
// refuses every check until the file reads again.
func NewChecker(path string) (*Checker, error) {
	c := &Checker{path: path, now: time.Now, written: map[string]time.Time{}}
	c.used = readUsed(usedPath(path))
	return c, c.load()
}

// racy is how close to a read the file's mtime must be for the stat to
// be no proof that the file is the one read: coarse mtimes (a second on
// some file systems) and an inode reused by the next rename could make a
// new file look like the old. Within it every check reads the file, as
// git re-reads a "racily clean" file; past it a stat is enough.
const racy = 2 * time.Second

// load reads the file again unless it is the one last read and was so
// well before that read: the same inode, size and mtime, the mtime racy
// older than the read. The caller holds c.mu, or is NewChecker.
func (c *Checker) load() error {
	fi, err := os.Stat(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		c.fi, c.hashes, c.names = nil, nil, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrFile, c.path, err)
	}
	if c.fi != nil && os.SameFile(fi, c.fi) && fi.Size() == c.fi.Size() && fi.ModTime().Equal(c.fi.ModTime()) && c.read.Sub(fi.ModTime()) > racy {
		return nil
	}
	c.read = time.Now()
	ts, fi, err := read(c.path)
	if err != nil {
		// Fail closed: no token is accepted until the file reads again.
		c.fi, c.hashes, c.names = nil, nil, nil
		return err
	}
	c.fi, c.hashes, c.names = fi, make([][]byte, len(ts)), make([]string, len(ts))
	for i, t := range ts {
		c.hashes[i], _ = hex.DecodeString(t.SHA256)
		c.names[i] = t.Name
	}
	return nil
}

// Count is how many tokens the file holds now.
func (c *Checker) Count() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(); err != nil {
		return 0, err
	}
	return len(c.hashes), nil
}

// Check says which token's name token is: ErrNone when the file holds no
// token, ErrNotFound when none is token, ErrFile when the file cannot be
// read (no token is accepted until it can). The presented
// token's hash is compared with every hash in the file, in constant time,
// whatever matched first: how long a check takes says nothing of which
// token, or how much of one, was right.
func (c *Checker) Check(token string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(); err != nil {
		return "", err
	}
	if len(c.hashes) == 0 {
		return "", ErrNone
	}
	if len(token) != tokenLen || !strings.HasPrefix(token, Prefix) {
		return "", ErrNotFound
	}
	sum := sha256.Sum256([]byte(token))
	match := -1
	for i, h := range c.hashes {
		if equal(sum[:], h) && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return "", ErrNotFound
	}
	c.noteUse(hex.EncodeToString(sum[:]))
	return c.names[match], nil
}

// noteUse remembers that the token with hash h was accepted now, and
// writes that down for `meta token ls` when the last write for it is a
// minute old: the file is not rewritten on every request. It is safe to
// lose, so it is written without syncs. The caller holds c.mu.
func (c *Checker) noteUse(h string) {
	now := c.now().UTC().Truncate(time.Second)
	c.used[h] = now
	if now.Sub(c.written[h]) < time.Minute {
		return
	}
	c.written[h] = now
	// Only the tokens the file holds now: removed ones are forgotten.
	keep := make(map[string]time.Time, len(c.hashes))
	for _, b := range c.hashes {
		k := hex.EncodeToString(b)
		if t, ok := c.used[k]; ok {
			keep[k] = t
		}
	}
	c.used = keep
	data, _ := json.Marshal(keep)
	// A failure costs only the "last used" column; never the request.
	atomicfile.WriteUnsynced(afero.NewOsFs(), usedPath(c.path), data, 0o600)
}

// usedPath is where a hub writes when it last accepted each token: beside
// the tokens file, so that the tokens file changes only when the tokens do.
func usedPath(path string) string {
	return strings.TrimSuffix(path, ".json") + "-used.json"
}

func readUsed(path string) map[string]time.Time {
	used := map[string]time.Time{}
	if data, err := os.ReadFile(path); err == nil {
		json.Unmarshal(data, &used)
	}
	return used
}
