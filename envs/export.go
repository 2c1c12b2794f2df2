package envs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
)

// ErrLocalChanges: the plain env file export would replace says something
// the log's env does not, so replacing it would lose it.
var ErrLocalChanges = errors.New("would overwrite local changes")

// Exported is what Export wrote, or would write.
type Exported struct {
	// Data is the plain env file.
	Data []byte
	// Version is the version it names in its recipe line and stamp: the
	// one the log says runs; "" when the log knows none and no file said.
	Version string
	// Was is the version the file replaced named, when there was one.
	Was string
	// Overwritten names the keys of the file replaced that differed from
	// the log's env (by dotenv.LocalDiff, from the file to the log's):
	// empty unless force let it replace them.
	Overwritten dotenv.Changes
}

// Export makes the plain env file abra reads for domain: the log's env,
// with the recipe line naming the version the log says runs (abra writes
// it there when it deploys, never into the log's env, so the one imported
// is likely older) and, when either file has it, the OPERATOR_SYNC_VERSION
// stamp naming it too. With path "" it only returns it. Else it replaces
// path whole (mode 0600), unless path holds anything the log's env does
// not, apart from those deploy keys: then it writes nothing and returns
// ErrLocalChanges naming the keys, unless force.
func (e *Envs) Export(ctx context.Context, domain, path string, force bool) (*Exported, error) {
	wrap := func(err error) error { return fmt.Errorf("export %s: %w", domain, err) }
	file, _, _, err := e.Open(ctx, domain)
	if err != nil {
		return nil, err
	}
	var local *dotenv.File
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, wrap(err)
		default:
			f, err := dotenv.Parse(path, data)
			if err != nil && !force {
				return nil, wrap(fmt.Errorf("%w: %w; so meta cannot tell what replacing it would change, and wrote nothing (--force replaces it all the same)", ErrLocalChanges, err))
			}
			if err == nil {
				local = &f
			}
		}
	}
	out := &Exported{}
	running := ""
	if h, err := e.Store.Head(domain); err == nil {
		running = h.Running()
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, wrap(err)
	}
	_, stamped := file.Get(dotenv.SyncVersionKey)
	if local != nil {
		_, _, out.Was, _ = local.Recipe()
		if _, ok := local.Get(dotenv.SyncVersionKey); ok {
			stamped = true
		}
	}
	out.Version = running
	if out.Version == "" {
		// The log has no deploy: the version the replaced file named
		// stays, else the one the log's env names.
		out.Version = out.Was
	}
	if out.Version == "" {
		_, _, out.Version, _ = file.Recipe()
	}
	if out.Version != "" {
		file.SetVersion(out.Version)
	}
	if local != nil {
		if c := dotenv.LocalDiff(*local, file); !c.Empty() {
			if !force {
				return nil, wrap(fmt.Errorf("%w: %s differs from the log's env in %s; nothing was written: `meta env import %s %s` records the file in the log, --force replaces it", ErrLocalChanges, path, describe(c), domain, path))
			}
			out.Overwritten = c
		}
	}
	out.Data = file.Bytes()
	if stamped && out.Version != "" {
		out.Data = abra.Stamp(out.Data, out.Version)
	}
	if path == "" {
		return out, nil
	}
	if err := atomicfile.Write(afero.NewOsFs(), path, out.Data, 0o600); err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

// describe names the keys of c, the changes from a local file to the
// log's env, by name only: "A (another value), B (only in the file)".
func describe(c dotenv.Changes) string {
	var parts []string
	for _, k := range c.Changed {
		parts = append(parts, k+" (another value)")
	}
	for _, k := range c.Removed {
		parts = append(parts, k+" (only in the file)")
	}
	for _, k := range c.Added {
		parts = append(parts, k+" (not in the file)")
	}
	return strings.Join(parts, ", ")
}
