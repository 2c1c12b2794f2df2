package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"path"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

// Cache keeps copies of an app's records in one file, so reading an app
// with thousands of events costs one file read instead of thousands, and the
// app's folded head, so reading it costs a directory listing. It is derived
// data, kept outside the work tree (under .git/meta/cache), keyed by record
// file names: records are immutable, so a copy stays right as long as its
// name does. A record changed in place breaks that promise; `meta verify`
// finds it and drops the app's cache. A damaged cache file is rebuilt.
type Cache struct {
	fs afero.Fs
}

// NewCache keeps its files in fsys.
func NewCache(fsys afero.Fs) *Cache { return &Cache{fs: fsys} }

// cacheMagic starts every cache file; bump the digit to invalidate all
// caches when the layout changes.
const cacheMagic = "metacache1\n"

func (c *Cache) file(a projects.Address) string {
	return path.Join(a.Project, a.Env, a.App)
}

// Load returns the cached records of app a by record path.
func (c *Cache) Load(a projects.Address) map[string][]byte {
	data, err := afero.ReadFile(c.fs, c.file(a))
	out := map[string][]byte{}
	if err != nil || !bytes.HasPrefix(data, []byte(cacheMagic)) {
		return out
	}
	data = data[len(cacheMagic):]
	// Frame: uvarint name length, name, uvarint data length, data, CRC-32
	// of name and data. A damaged frame ends the read: what came before it
	// is still good.
	for len(data) > 0 {
		name, rest, ok := field(data)
		if !ok {
			break
		}
		rec, rest, ok := field(rest)
		if !ok || len(rest) < 4 {
			break
		}
		sum := crc32.NewIEEE()
		sum.Write(name)
		sum.Write(rec)
		if binary.BigEndian.Uint32(rest) != sum.Sum32() {
			break
		}
		out[string(name)] = rec
		data = rest[4:]
	}
	return out
}

func field(b []byte) ([]byte, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// Store replaces app a's cache with recs. Errors are ignored: a cache that
// cannot be written only costs speed.
func (c *Cache) Store(a projects.Address, paths []string, recs map[string][]byte) {
	var buf bytes.Buffer
	buf.WriteString(cacheMagic)
	var tmp [binary.MaxVarintLen64]byte
	for _, p := range paths {
		rec, ok := recs[p]
		if !ok {
			continue
		}
		buf.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(p)))])
		buf.WriteString(p)
		buf.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(rec)))])
		buf.Write(rec)
		sum := crc32.NewIEEE()
		sum.Write([]byte(p))
		sum.Write(rec)
		binary.BigEndian.PutUint32(tmp[:4], sum.Sum32())
		buf.Write(tmp[:4])
	}
	name := c.file(a)
	if err := c.fs.MkdirAll(path.Dir(name), 0o755); err != nil {
		return
	}
	// Written aside and renamed, so concurrent readers see the old or the
	// new cache, never half of one.
	tmp2 := name + ".tmp"
	if err := afero.WriteFile(c.fs, tmp2, buf.Bytes(), 0o644); err != nil {
		return
	}
	c.fs.Rename(tmp2, name)
}

// Drop forgets everything cached for app a, so the next read goes back to
// the records themselves.
func (c *Cache) Drop(a projects.Address) {
	c.fs.Remove(c.file(a))
	c.fs.Remove(c.file(a) + ".head")
}

// HeadKey identifies an app's set of records: the head folded from the same
// records by the same fold rules is the same head.
func HeadKey(paths []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s fold %d\n", cacheMagic, fold.Version)
	for _, p := range paths {
		h.Write([]byte(p))
		h.Write([]byte{'\n'})
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// headMemo is what the cache keeps of a folded head.
type headMemo struct {
	Key  string     `json:"key"`
	Head *fold.Head `json:"head"`
}

// Head returns the head memoised for key, if there is one.
func (c *Cache) Head(a projects.Address, key string) (*fold.Head, bool) {
	data, err := afero.ReadFile(c.fs, c.file(a)+".head")
	if err != nil {
		return nil, false
	}
	var m headMemo
	if json.Unmarshal(data, &m) != nil || m.Key != key || m.Head == nil {
		return nil, false
	}
	return m.Head, true
}

// StoreHead memoises h as the head of the records key names.
func (c *Cache) StoreHead(a projects.Address, key string, h *fold.Head) {
	data, err := json.Marshal(headMemo{Key: key, Head: h})
	if err != nil {
		return
	}
	name := c.file(a) + ".head"
	if c.fs.MkdirAll(path.Dir(name), 0o755) != nil {
		return
	}
	tmp := name + ".tmp"
	if afero.WriteFile(c.fs, tmp, data, 0o644) == nil {
		c.fs.Rename(tmp, name)
	}
}
