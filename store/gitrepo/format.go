package gitrepo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/config"
)

// ErrUnsupported means the repository is in a format meta does not fully
// understand, so it refuses to write to it rather than corrupt it.
var ErrUnsupported = errors.New("unsupported repository format")

// Formats meta reads and writes: git's repository format versions 0 and 1
// with SHA-1 objects and files refs (loose refs and packed-refs), and of the
// format-1 extensions only those that change nothing meta does.
//
// Refused: the sha256 object format (meta writes SHA-1 ids), reftable ref
// storage (meta reads refs from files), partial clones (objects meta needs
// may be missing), per-worktree config, any extension it does not know,
// any format version after 1, and shallow clones (history meta checks and
// replays is missing).
var knownExtensions = map[string]func(value string) error{
	"objectformat": func(v string) error {
		if strings.EqualFold(v, "sha1") {
			return nil
		}
		return fmt.Errorf("it uses the %s object format; meta writes SHA-1 objects only", v)
	},
	"refstorage": func(v string) error {
		if strings.EqualFold(v, "files") {
			return nil
		}
		return fmt.Errorf("it keeps its refs in %s; meta reads and writes files refs only", v)
	},
	// meta never deletes objects, so it honours preciousObjects by
	// construction.
	"preciousobjects": func(string) error { return nil },
	// git defines noop for tests of this very check.
	"noop": func(string) error { return nil },
}

// checkFormat refuses a repository meta cannot safely write: it reads the
// repository's own config, as git does before touching anything.
func checkFormat(gitDir string) error {
	data, err := os.ReadFile(filepath.Join(gitDir, "config"))
	if errors.Is(err, os.ErrNotExist) {
		data = nil // git treats a missing config as format 0 without extensions
	} else if err != nil {
		return fmt.Errorf("read git config: %w", err)
	}
	cfg := config.New()
	if err := config.NewDecoder(bytes.NewReader(data)).Decode(cfg); err != nil {
		return fmt.Errorf("%w: .git/config is not a git config file: %v", ErrUnsupported, err)
	}
	if core := cfg.Section("core"); core.HasOption("repositoryformatversion") {
		// Read as git reads an integer: "01" is 1, a key without a value
		// is an error.
		v := strings.TrimSpace(core.Options.Get("repositoryformatversion"))
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 1 {
			return fmt.Errorf("%w: core.repositoryformatversion is %q; meta knows versions 0 and 1", ErrUnsupported, v)
		}
	}
	// Checked whatever the version: git ignores some extensions in
	// version 0, but a repository that names one was meant to have it.
	ext := cfg.Section("extensions")
	if len(ext.Subsections) > 0 {
		return fmt.Errorf("%w: [extensions %q] is set, which meta does not know; it refuses to write what it might corrupt", ErrUnsupported, ext.Subsections[0].Name)
	}
	for _, r := range cfg.Section("remote").Subsections {
		// A key without a value is true, as git reads a boolean.
		if v := r.Options.Get("promisor"); r.HasOption("promisor") && (v == "" || isTrue(v)) {
			return fmt.Errorf("%w: it is a partial clone (remote.%s.promisor), missing objects meta reads; clone it whole", ErrUnsupported, r.Name)
		}
	}
	if promisors, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "*.promisor")); len(promisors) > 0 {
		return fmt.Errorf("%w: it is a partial clone (%s), missing objects meta reads; clone it whole", ErrUnsupported, filepath.Base(promisors[0]))
	}
	for _, o := range ext.Options {
		key := strings.ToLower(o.Key)
		check, ok := knownExtensions[key]
		if !ok {
			return fmt.Errorf("%w: extensions.%s is set, which meta does not know; it refuses to write what it might corrupt", ErrUnsupported, key)
		}
		if err := check(o.Value); err != nil {
			return fmt.Errorf("%w: extensions.%s = %s: %v", ErrUnsupported, key, o.Value, err)
		}
	}
	if _, err := os.Stat(filepath.Join(gitDir, "shallow")); err == nil {
		return fmt.Errorf("%w: it is a shallow clone, without the history meta checks and replays; `git fetch --unshallow` fetches it", ErrUnsupported)
	}
	return nil
}

// isTrue reads a git boolean.
func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "1":
		return true
	}
	return false
}
