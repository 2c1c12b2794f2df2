package record

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
)

// crockford is the ULID alphabet.
const crockford = projects.IDAlphabet

// idGen makes ids that sort in creation order even within one millisecond of
// one process: the random part of a repeated millisecond is incremented.
type idGen struct {
	mu      sync.Mutex
	lastMs  uint64
	lastRnd [10]byte
}

var ids idGen

// NewID returns a fresh ULID for an event appended at t.
func NewID(t time.Time) string {
	return ids.next(t)
}

func (g *idGen) next(t time.Time) string {
	ms := uint64(t.UnixMilli())
	g.mu.Lock()
	defer g.mu.Unlock()
	if ms <= g.lastMs {
		// Same (or, with a clock step back, earlier) millisecond: keep
		// ordering by counting up from the last id.
		ms = g.lastMs
		for i := len(g.lastRnd) - 1; i >= 0; i-- {
			g.lastRnd[i]++
			if g.lastRnd[i] != 0 {
				break
			}
		}
	} else {
		if _, err := rand.Read(g.lastRnd[:]); err != nil {
			panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the runtime guarantees it does not
		}
		g.lastMs = ms
	}
	return encodeULID(ms, g.lastRnd)
}

func encodeULID(ms uint64, rnd [10]byte) string {
	var raw [16]byte
	binary.BigEndian.PutUint16(raw[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(raw[2:6], uint32(ms))
	copy(raw[6:], rnd[:])
	// 128 bits as 26 base32 digits: the first digit carries 3 bits.
	hi := binary.BigEndian.Uint64(raw[0:8])
	lo := binary.BigEndian.Uint64(raw[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// IDTime is the creation time encoded in an event id.
func IDTime(id string) (time.Time, error) {
	if err := projects.ValidateID(id); err != nil {
		return time.Time{}, err
	}
	var ms uint64
	for i := 0; i < 10; i++ { // 10 digits = 50 bits; the top 2 are zero
		ms = ms<<5 | uint64(indexOf(id[i]))
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

func indexOf(c byte) int {
	for i := 0; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return 0
}
