// Package gitindex adds entries to a git index file (.git/index) without
// touching the working tree, so that files meta commits directly show as
// clean to the git CLI.
//
// It reads index versions 2, 3 and 4, plain or split, keeps every existing
// entry byte for byte (stat data included), and writes version 2 (3 when an
// entry needs extended flags). A large index is written split (see
// split.go), so adding an entry costs the same however many there are.
// Optional extensions (cache tree, untracked cache, resolve undo, fsmonitor,
// offset tables) are dropped: git rebuilds them when it next needs them.
// Indexes with a required extension meta does not understand (sparse index)
// are refused, never rewritten.
package gitindex

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// ErrLocked means another process holds .git/index.lock.
var ErrLocked = errors.New("git index is locked")

// ErrUnsupported means the index uses a feature meta cannot rewrite safely.
var ErrUnsupported = errors.New("unsupported git index")

const (
	signature = "DIRC"
	// fixedSize is the part of an entry before its path: stat data, object
	// id and flags.
	fixedSize    = 62
	flagExtended = 0x4000
	nameMask     = 0x0fff
)

// Entry is one new path to record in the index with the given blob id.
type Entry struct {
	Path string
	Hash [20]byte
	// Mode is git's: 0o100644 (also for zero), 0o100755 or 0o120000 (a
	// symbolic link, whose blob is the path it names).
	Mode uint32
	// Stat is the file's metadata in the working tree; git compares it to
	// decide the file is unchanged without reading it.
	Stat Stat
}

// Stat is the part of a file's metadata git keeps in the index.
type Stat struct {
	Ctime, Mtime             time.Time
	Dev, Ino, Mode, UID, GID uint32
	Size                     uint32
}

// entry is an existing entry kept as raw bytes in version 2/3 layout.
type entry struct {
	path string
	raw  []byte // fixed part (+ extended flags), without path and padding
}

// Add records entries in the index at indexPath (usually .git/index),
// creating it if it does not exist; an entry for a path already there
// replaces it. On a split index it only rewrites the small part. It takes
// index.lock the way git does and refuses when another process holds it.
func Add(indexPath string, entries ...Entry) error {
	return withLock(indexPath, func() ([]byte, string, error) { return plan(indexPath, entries) })
}

// withLock holds index.lock while build makes the new index, then puts it
// in place; build also names a shared index the new one supersedes.
func withLock(indexPath string, build func() (data []byte, oldShared string, err error)) error {
	lockPath := indexPath + ".lock"
	lock, err := os.OpenFile(lockPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s exists (another git process is running, or one crashed: remove the file if no git command is running)", ErrLocked, lockPath)
		}
		return fmt.Errorf("lock git index: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			lock.Close()
			os.Remove(lockPath)
		}
	}()
	data, oldShared, err := build()
	if err != nil {
		return err
	}
	if _, err := lock.Write(data); err != nil {
		return fmt.Errorf("write git index: %w", err)
	}
	if err := lock.Close(); err != nil {
		return fmt.Errorf("write git index: %w", err)
	}
	if err := os.Rename(lockPath, indexPath); err != nil {
		return fmt.Errorf("replace git index: %w", err)
	}
	committed = true
	if oldShared != "" {
		os.Remove(oldShared) // replaced by a new shared index
	}
	return nil
}

// plan works out the new content of .git/index, writing a new shared index
// first when one is needed; oldShared names a shared index it superseded.
func plan(indexPath string, add []Entry) (data []byte, oldShared string, err error) {
	ix, err := read(indexPath)
	if err != nil {
		return nil, "", err
	}
	// The common case once a log is large: a split index whose small part
	// only adds entries. Add to that part alone; an addition for a path the
	// shared part holds replaces it when read, by git and by resolve.
	if ix.shared != nil && len(ix.deleted) == 0 && len(ix.replaced) == 0 && len(ix.entries)+len(add) <= maxSplitEntries {
		return encode(merge(ix.entries, add), ix.shared), "", nil
	}
	all, err := resolve(indexPath, ix)
	if err != nil {
		return nil, "", fmt.Errorf("read git index: %w", err)
	}
	return writePlanned(indexPath, ix, merge(all, add))
}

// writePlanned encodes the full list of entries that replaces index ix:
// plain while small, else as a new shared index and an empty split part.
func writePlanned(indexPath string, ix *index, all []entry) (data []byte, oldShared string, err error) {
	if ix.shared == nil && len(all) < splitAbove {
		return encode(all, nil), "", nil
	}
	id, err := writeShared(indexPath, all)
	if err != nil {
		return nil, "", err
	}
	if ix.shared != nil && string(ix.shared) != string(id) {
		oldShared = sharedPath(indexPath, ix.shared)
	}
	return encode(nil, id), oldShared, nil
}

func merge(existing []entry, add []Entry) []entry {
	replace := make(map[string]bool, len(add))
	for _, a := range add {
		replace[a.Path] = true
	}
	out := make([]entry, 0, len(existing)+len(add))
	for _, e := range existing {
		if !replace[e.path] {
			out = append(out, e)
		}
	}
	for _, a := range add {
		out = append(out, entry{path: a.Path, raw: fixed(a)})
	}
	return sortEntries(out)
}

// sortEntries puts entries in index order: by path bytes, then stage; the
// sort is stable so the stages of one path keep their order.
func sortEntries(es []entry) []entry {
	sort.SliceStable(es, func(i, j int) bool { return es[i].path < es[j].path })
	return es
}

func fixed(a Entry) []byte {
	b := make([]byte, fixedSize)
	put := func(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	put(0, uint32(a.Stat.Ctime.Unix()))
	put(4, uint32(a.Stat.Ctime.Nanosecond()))
	put(8, uint32(a.Stat.Mtime.Unix()))
	put(12, uint32(a.Stat.Mtime.Nanosecond()))
	put(16, a.Stat.Dev)
	put(20, a.Stat.Ino)
	mode := a.Mode
	if mode == 0 {
		mode = 0o100644
	}
	put(24, mode)
	put(28, a.Stat.UID)
	put(32, a.Stat.GID)
	put(36, a.Stat.Size)
	copy(b[40:60], a.Hash[:])
	n := len(a.Path)
	if n > nameMask {
		n = nameMask
	}
	binary.BigEndian.PutUint16(b[60:], uint16(n))
	return b
}

// read parses the index file; a missing file is an empty index.
func read(indexPath string) (*index, error) {
	data, err := os.ReadFile(indexPath)
	if errors.Is(err, os.ErrNotExist) {
		return &index{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read git index: %w", err)
	}
	ix, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("read git index %s: %w", filepath.Base(indexPath), err)
	}
	return ix, nil
}

func parse(data []byte) (*index, error) {
	if len(data) < 12+sha1.Size || string(data[:4]) != signature {
		return nil, errors.New("not a git index file")
	}
	body, sum := data[:len(data)-sha1.Size], data[len(data)-sha1.Size:]
	if got := sha1.Sum(body); !bytes.Equal(got[:], sum) && !allZero(sum) {
		return nil, errors.New("checksum mismatch: the index is corrupt")
	}
	version := binary.BigEndian.Uint32(data[4:8])
	if version < 2 || version > 4 {
		return nil, fmt.Errorf("%w: index version %d", ErrUnsupported, version)
	}
	count := binary.BigEndian.Uint32(data[8:12])
	es := make([]entry, 0, count)
	off := 12
	prev := ""
	for i := uint32(0); i < count; i++ {
		if off+fixedSize > len(body) {
			return nil, errors.New("truncated entry")
		}
		flags := binary.BigEndian.Uint16(data[off+60:])
		head := fixedSize
		if flags&flagExtended != 0 {
			if version < 3 {
				return nil, errors.New("extended flags in a version 2 index")
			}
			head += 2
		}
		if off+head > len(body) {
			return nil, errors.New("truncated entry")
		}
		raw := data[off : off+head]
		p := off + head
		var path string
		if version == 4 {
			strip, n := offsetVarint(body[p:])
			if n == 0 || strip > uint64(len(prev)) {
				return nil, errors.New("bad path prefix in version 4 entry")
			}
			p += n
			end := bytes.IndexByte(body[p:], 0)
			if end < 0 {
				return nil, errors.New("unterminated path")
			}
			path = prev[:len(prev)-int(strip)] + string(body[p:p+end])
			off = p + end + 1
		} else {
			end := bytes.IndexByte(body[p:], 0)
			if end < 0 {
				return nil, errors.New("unterminated path")
			}
			path = string(body[p : p+end])
			// Entries are padded with 1 to 8 NULs to a multiple of 8 bytes.
			off += (head + len(path) + 8) &^ 7
		}
		prev = path
		es = append(es, entry{path: path, raw: raw})
	}
	ix, err := extensions(body[off:])
	if err != nil {
		return nil, err
	}
	ix.entries = es
	return ix, nil
}

// extensions reads the link extension of a split index and refuses indexes
// whose other required extensions (lower-case signature) would change
// meaning if dropped.
func extensions(ext []byte) (*index, error) {
	ix := &index{}
	for len(ext) >= 8 {
		sig := string(ext[:4])
		size := binary.BigEndian.Uint32(ext[4:8])
		if uint64(size) > uint64(len(ext)-8) {
			return nil, errors.New("truncated extension")
		}
		data := ext[8 : 8+size]
		switch {
		case sig == "link":
			var err error
			if ix, err = parseLink(data); err != nil {
				return nil, err
			}
		case sig[0] >= 'a' && sig[0] <= 'z':
			what := map[string]string{"sdir": "a sparse index"}[sig]
			if what == "" {
				what = "extension " + sig
			}
			return nil, fmt.Errorf("%w: the index uses %s; run `git sparse-checkout disable`", ErrUnsupported, what)
		}
		ext = ext[8+size:]
	}
	return ix, nil
}

// offsetVarint decodes git's "offset" varint: each continuation adds one
// before shifting, so every value has exactly one encoding.
func offsetVarint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	c := b[0]
	v := uint64(c & 127)
	i := 1
	for c&128 != 0 {
		if i >= len(b) || i > 9 {
			return 0, 0
		}
		c = b[i]
		i++
		v = (v+1)<<7 | uint64(c&127)
	}
	return v, i
}

// encode writes entries (and, for a split index, the link to its shared
// index) in version 2, or 3 when an entry has extended flags.
func encode(es []entry, link []byte) []byte {
	version := uint32(2)
	size := 12 + sha1.Size
	for _, e := range es {
		if len(e.raw) > fixedSize {
			version = 3
		}
		size += (len(e.raw) + len(e.path) + 8) &^ 7
	}
	out := make([]byte, 12, size)
	copy(out, signature)
	binary.BigEndian.PutUint32(out[4:], version)
	binary.BigEndian.PutUint32(out[8:], uint32(len(es)))
	for _, e := range es {
		start := len(out)
		out = append(out, e.raw...)
		// The name length lives in the flags; a replacement entry read
		// from a split index has none, so always set it from the path.
		n := len(e.path)
		if n > nameMask {
			n = nameMask
		}
		flags := binary.BigEndian.Uint16(out[start+60:])
		binary.BigEndian.PutUint16(out[start+60:], flags&^nameMask|uint16(n))
		out = append(out, e.path...)
		size := (len(e.raw) + len(e.path) + 8) &^ 7
		for len(out)-start < size {
			out = append(out, 0)
		}
	}
	if link != nil {
		// The shared index id, then empty delete and replace bitmaps: git
		// 2.39 crashes on a link extension without them.
		ext := append(append(append([]byte(nil), link...), emptyEWAH...), emptyEWAH...)
		var hdr [8]byte
		copy(hdr[:], "link")
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(ext)))
		out = append(append(out, hdr[:]...), ext...)
	}
	sum := sha1.Sum(out)
	return append(out, sum[:]...)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Remove drops paths from the index at indexPath, for files a sync deletes.
// It rewrites the whole index; deletions are rare (meta never deletes).
func Remove(indexPath string, paths ...string) error {
	return withLock(indexPath, func() ([]byte, string, error) {
		ix, err := read(indexPath)
		if err != nil {
			return nil, "", err
		}
		all, err := resolve(indexPath, ix)
		if err != nil {
			return nil, "", err
		}
		drop := make(map[string]bool, len(paths))
		for _, p := range paths {
			drop[p] = true
		}
		kept := all[:0]
		for _, e := range all {
			if !drop[e.path] {
				kept = append(kept, e)
			}
		}
		return writePlanned(indexPath, ix, kept)
	})
}

// Lookup returns the blob ids the index at indexPath records, at merge
// stage 0, for the paths match accepts. It reads the whole index: callers
// ask only when the work tree has something to explain.
func Lookup(indexPath string, match func(path string) bool) (map[string][20]byte, error) {
	ix, err := read(indexPath)
	if err != nil {
		return nil, err
	}
	all, err := resolve(indexPath, ix)
	if err != nil {
		return nil, err
	}
	out := map[string][20]byte{}
	for _, e := range all {
		if binary.BigEndian.Uint16(e.raw[60:])>>12&3 == 0 && match(e.path) {
			var h [20]byte
			copy(h[:], e.raw[40:60])
			out[e.path] = h
		}
	}
	return out, nil
}
