package gitindex

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"github.com/spf13/afero"
)

// Split index: once an index is large, meta keeps most entries in a shared
// index file (.git/sharedindex.<id>) written rarely, and writes only the
// few entries added since into .git/index, which names the shared file in
// its "link" extension. This is git's own format (git update-index
// --split-index), so appends cost the same at 100 or 100,000 records.
// They are variables so tests can reach every path with small indexes.
var (
	// splitAbove is the entry count from which a plain index becomes split:
	// smaller indexes are cheap to rewrite whole and stay plain.
	splitAbove = 4096
	// maxSplitEntries is how many entries .git/index may hold before they
	// are folded into a new shared index; it bounds the per-append rewrite.
	maxSplitEntries = 1024
)

// index is a parsed .git/index.
type index struct {
	entries []entry
	// shared is the id of the shared index when the index is split.
	shared []byte
	// deleted and replaced are the positions in the shared index that the
	// entries here delete or replace (git writes these; meta does not).
	deleted, replaced []int
}

// parseLink reads a link extension: the shared index id, optionally
// followed by the delete and replace bitmaps.
func parseLink(data []byte) (*index, error) {
	if len(data) < sha1.Size {
		return nil, errors.New("corrupt link extension")
	}
	ix := &index{shared: append([]byte(nil), data[:sha1.Size]...)}
	rest := data[sha1.Size:]
	if len(rest) == 0 {
		return ix, nil
	}
	var err error
	if ix.deleted, rest, err = ewahBits(rest); err != nil {
		return nil, fmt.Errorf("link extension delete bitmap: %w", err)
	}
	if ix.replaced, _, err = ewahBits(rest); err != nil {
		return nil, fmt.Errorf("link extension replace bitmap: %w", err)
	}
	return ix, nil
}

// emptyEWAH is an empty bitmap as git serializes it: no bits, one zero
// marker word, the marker at position 0.
var emptyEWAH = []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// ewahBits decodes one serialized EWAH bitmap (git's ewah/ewah_io.c) into
// the positions of its set bits, and returns what follows it.
func ewahBits(b []byte) ([]int, []byte, error) {
	if len(b) < 8 {
		return nil, nil, errors.New("truncated bitmap")
	}
	bitSize := int(binary.BigEndian.Uint32(b))
	words := int(binary.BigEndian.Uint32(b[4:]))
	if words < 0 || len(b) < 8+8*words+4 {
		return nil, nil, errors.New("truncated bitmap")
	}
	w := func(i int) uint64 { return binary.BigEndian.Uint64(b[8+8*i:]) }
	var out []int
	pos := 0
	for i := 0; i < words; {
		marker := w(i)
		i++
		run := int(marker >> 1 & 0xffffffff)
		literals := int(marker >> 33)
		if marker&1 == 1 {
			for k := 0; k < run*64; k++ {
				out = append(out, pos+k)
			}
		}
		pos += run * 64
		for j := 0; j < literals && i < words; j++ {
			lit := w(i)
			i++
			for k := 0; k < 64; k++ {
				if lit&(1<<k) != 0 {
					out = append(out, pos+k)
				}
			}
			pos += 64
		}
	}
	for len(out) > 0 && out[len(out)-1] >= bitSize {
		out = out[:len(out)-1]
	}
	return out, b[8+8*words+4:], nil
}

// sharedPath is where the shared index with the given id lives.
func sharedPath(indexPath string, id []byte) string {
	return filepath.Join(filepath.Dir(indexPath), "sharedindex."+hex.EncodeToString(id))
}

// resolve turns a split index into the full list of entries, applying
// git's deletions and replacements to the shared index.
func resolve(indexPath string, ix *index) ([]entry, error) {
	if ix.shared == nil {
		return ix.entries, nil
	}
	data, err := os.ReadFile(sharedPath(indexPath, ix.shared))
	if err != nil {
		return nil, fmt.Errorf("read shared index: %w", err)
	}
	base, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("read shared index: %w", err)
	}
	if base.shared != nil {
		return nil, errors.New("shared index is itself split")
	}
	all := base.entries
	drop := make(map[int]bool, len(ix.deleted))
	for _, p := range ix.deleted {
		drop[p] = true
	}
	if len(ix.replaced) > len(ix.entries) {
		return nil, errors.New("link extension replaces more entries than the index holds")
	}
	for k, p := range ix.replaced {
		if p >= len(all) {
			return nil, errors.New("link extension replaces an entry past the shared index")
		}
		// A replacement carries no name: it keeps the shared entry's.
		all[p] = entry{path: all[p].path, raw: ix.entries[k].raw}
	}
	out := make([]entry, 0, len(all)+len(ix.entries)-len(ix.replaced))
	at := make(map[string]int, len(all))
	for i, e := range all {
		if !drop[i] {
			at[e.key()] = len(out)
			out = append(out, e)
		}
	}
	// Additions replace a shared entry of the same path and stage, as git's
	// own merge of a split index does.
	for _, e := range ix.entries[len(ix.replaced):] {
		if i, ok := at[e.key()]; ok {
			out[i] = e
			continue
		}
		out = append(out, e)
	}
	return sortEntries(out), nil
}

// key identifies an entry: its path and merge stage.
func (e entry) key() string {
	return e.path + "\x00" + string(rune('0'+binary.BigEndian.Uint16(e.raw[60:])>>12&3))
}

// writeShared writes entries as a new shared index and returns its id.
func writeShared(indexPath string, entries []entry) ([]byte, error) {
	data := encode(entries, nil)
	id := data[len(data)-sha1.Size:]
	// Whole or not at all, and, like the index that names it, not synced
	// (git rebuilds an index; meta's commit stands without one).
	if err := atomicfile.WriteUnsynced(afero.NewOsFs(), sharedPath(indexPath, id), data, 0o644); err != nil {
		return nil, fmt.Errorf("write shared index: %w", err)
	}
	return id, nil
}
