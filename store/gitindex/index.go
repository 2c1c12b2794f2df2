// Package gitindex adds entries to a git index file (.git/index) without
// touching the working tree, so that files meta commits directly show as
// clean to the git CLI.
//
// It reads index versions 2, 3 and 4, keeps every existing entry byte for
// byte (stat data included), and writes version 2 (3 when an entry needs
// extended flags). Optional extensions (cache tree, untracked cache, resolve
// undo, fsmonitor, offset tables) are dropped: git rebuilds them when it next
// needs them. Indexes with a required extension meta does not understand
// (split index, sparse index) are refused, never rewritten.
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

// Entry is one new path to record in the index as a regular, non-executable
// file with the given blob id.
type Entry struct {
	Path string
	Hash [20]byte
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
// creating it if it does not exist. A path already in the index is replaced.
// It takes index.lock the way git does and refuses when another process holds
// it.
func Add(indexPath string, entries ...Entry) error {
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
	existing, err := read(indexPath)
	if err != nil {
		return err
	}
	merged := merge(existing, entries)
	if _, err := lock.Write(encode(merged)); err != nil {
		return fmt.Errorf("write git index: %w", err)
	}
	if err := lock.Close(); err != nil {
		return fmt.Errorf("write git index: %w", err)
	}
	if err := os.Rename(lockPath, indexPath); err != nil {
		return fmt.Errorf("replace git index: %w", err)
	}
	committed = true
	return nil
}

// Paths lists the paths in the index at indexPath, in index order, each
// once; it is for tests and diagnostics.
func Paths(indexPath string) ([]string, error) {
	es, err := read(indexPath)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(es))
	for i, e := range es {
		if i == 0 || es[i-1].path != e.path {
			out = append(out, e.path)
		}
	}
	return out, nil
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
	// Index order is by path bytes, then stage; the sort is stable so the
	// stages of one path (all existing) keep their order.
	sort.SliceStable(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
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
	put(24, 0o100644)
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
func read(indexPath string) ([]entry, error) {
	data, err := os.ReadFile(indexPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read git index: %w", err)
	}
	es, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("read git index %s: %w", filepath.Base(indexPath), err)
	}
	return es, nil
}

func parse(data []byte) ([]entry, error) {
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
	if err := checkExtensions(body[off:]); err != nil {
		return nil, err
	}
	return es, nil
}

// checkExtensions refuses indexes whose required extensions (lower-case
// signature) would change meaning if dropped.
func checkExtensions(ext []byte) error {
	for len(ext) >= 8 {
		sig := string(ext[:4])
		size := binary.BigEndian.Uint32(ext[4:8])
		if uint64(size) > uint64(len(ext)-8) {
			return errors.New("truncated extension")
		}
		if sig[0] >= 'a' && sig[0] <= 'z' {
			what := map[string]string{"link": "split index", "sdir": "sparse index"}[sig]
			if what == "" {
				what = "extension " + sig
			}
			return fmt.Errorf("%w: the index uses %s; run `git update-index --no-split-index` or `git sparse-checkout disable`", ErrUnsupported, what)
		}
		ext = ext[8+size:]
	}
	return nil
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

func encode(es []entry) []byte {
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
		out = append(out, e.path...)
		n := (len(e.raw) + len(e.path) + 8) &^ 7
		for len(out)-start < n {
			out = append(out, 0)
		}
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

// Tracked is an index entry as callers outside this package see it.
type Tracked struct {
	Path  string
	Hash  [20]byte
	Mtime time.Time
	Size  uint32
	Stage int
}

// List returns the index entries for which keep returns true.
func List(indexPath string, keep func(path string) bool) ([]Tracked, error) {
	es, err := read(indexPath)
	if err != nil {
		return nil, err
	}
	var out []Tracked
	for _, e := range es {
		if !keep(e.path) {
			continue
		}
		t := Tracked{
			Path:  e.path,
			Mtime: time.Unix(int64(binary.BigEndian.Uint32(e.raw[8:])), int64(binary.BigEndian.Uint32(e.raw[12:]))),
			Size:  binary.BigEndian.Uint32(e.raw[36:]),
			Stage: int(binary.BigEndian.Uint16(e.raw[60:])>>12) & 3,
		}
		copy(t.Hash[:], e.raw[40:60])
		out = append(out, t)
	}
	return out, nil
}
