// Package atomicfile writes files whole or not at all, and durably: the one
// way meta replaces a file, whether a record in the work tree, an env file
// abra reads, or its own state under .git/meta.
//
// The data goes to a hidden temporary file beside the target, is synced,
// given its mode and renamed over the target; then the directory is synced
// so that the rename survives a crash. Readers see the old file or the new
// one, never part of either. Data that is always safe to lose (a cache, a
// copy of what git holds) is written the same way without the two syncs:
// WriteUnsynced.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/afero"
)

// tempMarker is in the name of every temporary file Write makes: hidden
// (a leading dot, so listings and `ls` skip it) and recognisable, so that
// Discard can remove what a killed write left.
const tempMarker = ".meta-tmp-"

// Write replaces name in fsys with data, with permissions perm, durably:
// when it returns, the file survives a crash or power loss. Writers of the
// same name may run at once: each has its own temporary file, and the last
// rename wins.
func Write(fsys afero.Fs, name string, data []byte, perm os.FileMode) error {
	return write(fsys, name, data, perm, true)
}

// WriteUnsynced is Write for data that is always safe to lose, which a
// crash may leave as it was before: it skips the file's and the
// directory's sync, which cost more than the rest of a small write.
func WriteUnsynced(fsys afero.Fs, name string, data []byte, perm os.FileMode) error {
	return write(fsys, name, data, perm, false)
}

func write(fsys afero.Fs, name string, data []byte, perm os.FileMode, durable bool) (err error) {
	dir, base := filepath.Split(name)
	var suffix [6]byte
	rand.Read(suffix[:])
	tmp := filepath.Join(dir, "."+base+tempMarker+hex.EncodeToString(suffix[:]))
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			fsys.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The mode asked for, not the umask's version of it: an env file
		// abra reads keeps 0600.
		err = fsys.Chmod(tmp, perm)
	}
	if err == nil {
		err = fsys.Rename(tmp, name)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if !durable {
		return nil
	}
	if err := syncDir(fsys, dir); err != nil {
		return fmt.Errorf("write %s: written, but its directory was not synced: %w", name, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(fsys afero.Fs, dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := fsys.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// Discard removes name and any temporary file a killed Write of it left;
// a name that is not there is no error.
func Discard(fsys afero.Fs, name string) error {
	if err := RemoveTemps(fsys, name); err != nil {
		return err
	}
	if err := fsys.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveTemps removes the temporary files killed Writes of name left.
// Only a caller that knows no Write of name is under way may call it: one
// that serialises its writers, before it writes again.
func RemoveTemps(fsys afero.Fs, name string) error {
	dir, base := filepath.Split(name)
	var names []string
	if d, err := fsys.Open(orDot(dir)); err == nil {
		entries, _ := d.Readdirnames(-1)
		d.Close()
		for _, e := range entries {
			if strings.HasPrefix(e, "."+base+tempMarker) {
				names = append(names, filepath.Join(dir, e))
			}
		}
	}
	for _, n := range names {
		if err := fsys.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func orDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}
