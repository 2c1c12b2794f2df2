// Package cache keeps what reads derive from an app's records, so that they
// need not derive it again: copies of the records in one file per app (one
// read instead of thousands), and the app's folded head (no read at all).
//
// It is derived data, kept outside the work tree (under .git/meta/cache),
// always safe to delete, and keyed by content: a record's copy by its git
// blob id, a head by the id of the app's directory tree, which changes
// whenever any of the app's files does. A record whose bytes changed has
// another blob id, so it can never be answered from the cache. A damaged
// cache file is rebuilt.
package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// Version changes whenever the cache's layout does. A memoised head also
// carries fold.Version, so heads folded by older rules are not reused;
// TestFoldGolden fails when the fold's output changes without it.
const Version = 3

// magic starts every records file; a file of another version is ignored.
var magic = []byte("metacache" + string(rune('0'+Version)) + "\n")

// Cache keeps its files in fsys.
type Cache struct {
	fs afero.Fs
}

// New keeps the cache in fsys.
func New(fsys afero.Fs) *Cache { return &Cache{fs: fsys} }

func (c *Cache) file(a projects.Address) string {
	return path.Join(a.Project, a.Env, a.App)
}

// Records returns the cached copies of app a's records by blob id.
func (c *Cache) Records(a projects.Address) map[gitrepo.Hash][]byte {
	data, err := afero.ReadFile(c.fs, c.file(a))
	out := map[gitrepo.Hash][]byte{}
	if err != nil || !bytes.HasPrefix(data, magic) {
		return out
	}
	data = data[len(magic):]
	// Frame: the 20-byte blob id, uvarint length, content. A copy is kept
	// only if it hashes to its id, as git would: damaged or edited bytes
	// are never answered. A frame that does not parse ends the read.
	for len(data) > len(gitrepo.Hash{}) {
		var id gitrepo.Hash
		copy(id[:], data)
		rest := data[len(id):]
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			break
		}
		rec := rest[k : k+int(n)]
		if gitrepo.BlobID(rec) == id {
			out[id] = rec
		}
		data = rest[k+int(n):]
	}
	return out
}

// StoreRecords replaces app a's cached records with recs, in the order of
// ids. Errors are ignored: a cache that cannot be written only costs
// speed.
func (c *Cache) StoreRecords(a projects.Address, ids []gitrepo.Hash, recs map[gitrepo.Hash][]byte) {
	var buf bytes.Buffer
	buf.Write(magic)
	var tmp [binary.MaxVarintLen64]byte
	for _, id := range ids {
		rec, ok := recs[id]
		if !ok {
			continue
		}
		buf.Write(id[:])
		buf.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(rec)))])
		buf.Write(rec)
	}
	c.write(c.file(a), buf.Bytes())
}

func (c *Cache) write(name string, data []byte) {
	if c.fs.MkdirAll(path.Dir(name), 0o755) == nil {
		atomicfile.WriteUnsynced(c.fs, name, data, 0o644)
	}
}

// headMemo is what the cache keeps of a folded head: the head, what it was
// folded from and by, and a digest of all that, so that a memo damaged on
// disk is folded again rather than believed.
type headMemo struct {
	Tree   string          `json:"tree"`
	Cache  int             `json:"cache"`
	Fold   int             `json:"fold"`
	Head   json.RawMessage `json:"head"`
	Digest string          `json:"digest"`
}

func (m headMemo) digest() string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s %d %d %s", m.Tree, m.Cache, m.Fold, m.Head)))
	return hex.EncodeToString(sum[:])
}

// Head returns the head memoised for app a when its directory's tree was
// tree, if there is one folded by this meta's rules.
func (c *Cache) Head(a projects.Address, tree gitrepo.Hash) (*fold.Head, bool) {
	data, err := afero.ReadFile(c.fs, c.file(a)+".head")
	if err != nil {
		return nil, false
	}
	return DecodeHead(data, tree)
}

// StoreHead memoises h as the head of app a whose directory's tree is
// tree.
func (c *Cache) StoreHead(a projects.Address, tree gitrepo.Hash, h *fold.Head) {
	if data, err := EncodeHead(tree, h); err == nil {
		c.write(c.file(a)+".head", data)
	}
}

// EncodeHead is the memo of h as the head folded from the app tree tree:
// what the cache keeps, and what a derived state published for other
// clones carries.
func EncodeHead(tree gitrepo.Hash, h *fold.Head) ([]byte, error) {
	head, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	m := headMemo{Tree: tree.String(), Cache: Version, Fold: fold.Version, Head: head}
	m.Digest = m.digest()
	return json.Marshal(m)
}

// DecodeHead reads a memo EncodeHead made. It answers only for the tree
// it was folded from, by this meta's rules, and never a memo whose bytes
// do not add up (damaged on disk, or edited).
func DecodeHead(data []byte, tree gitrepo.Hash) (*fold.Head, bool) {
	var m headMemo
	if json.Unmarshal(data, &m) != nil || m.Tree != tree.String() || m.Cache != Version || m.Fold != fold.Version || m.Digest != m.digest() {
		return nil, false
	}
	var h fold.Head
	if json.Unmarshal(m.Head, &h) != nil {
		return nil, false
	}
	return &h, true
}

// Signed returns what store keeps of who signed app a's events (its own
// format, which it checks), nil when there is nothing.
func (c *Cache) Signed(a projects.Address) []byte {
	data, err := afero.ReadFile(c.fs, c.file(a)+".signed")
	if err != nil {
		return nil
	}
	return data
}

// StoreSigned keeps data as who signed app a's events.
func (c *Cache) StoreSigned(a projects.Address, data []byte) { c.write(c.file(a)+".signed", data) }

// DropSigned forgets what store keeps of who signed every app's events, so
// that the next read walks history for it again: what `meta verify`, which
// trusts nothing derived, does.
func (c *Cache) DropSigned() {
	afero.Walk(c.fs, "/", func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".signed") {
			c.fs.Remove(p)
		}
		return nil
	})
}
