package store

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// People name events, batches and commits by id as git names commits: the
// whole id, or its start. One rule, Prefix.Find, takes them all, so that
// `meta show`, `meta purge`, `meta env diff`, `meta batch show`, `meta aside`
// and `meta quarantine ack` read an id the same way; one rule, Abbreviate,
// shortens them in text output.

// MinPrefix is the fewest characters of an id meta takes for the whole of
// it, as git takes no fewer than 4 of a commit's. An event id's first
// characters are its time (4 of them span a year, 6 about nine hours, 9
// one second), so a prefix that short names one event only in a young log.
const MinPrefix = 4

// ShortLen is how many characters of an id text output shows: for an
// event, its millisecond and two characters of its random part. JSON always
// carries whole ids.
const ShortLen = 12

// mostCandidates is how many of the things an ambiguous id names its error
// lists.
const mostCandidates = 10

// ErrAmbiguousID: an id given by its start names more than one thing, or is
// shorter than MinPrefix.
var ErrAmbiguousID = errors.New("ambiguous id")

// Prefix is how one sort of thing is named by id. Find takes, case
// insensitively, a whole id, which wins over any longer one it starts, or
// the start of one, at least MinPrefix characters; a start that names
// several is refused (ErrAmbiguousID) with the first of them listed, and
// one that names none is Missing's error.
type Prefix[T any] struct {
	// What names the things, singular, for messages: "event".
	What string
	// Digits are the characters their ids are written in, and Len how
	// many an id has: anything longer or written otherwise (in either
	// case) can name nothing, and is refused as bad input.
	Digits string
	Len    int
	// ID is a thing's id.
	ID func(T) string
	// Describe tells one thing apart from others in a list: its kind,
	// app and time, say. The id is printed before it.
	Describe func(T) string
	// Missing is the error for an id that names nothing.
	Missing func(id string) error
}

// Check refuses an id that can name nothing as it is written: longer than
// an id, written in other characters (bad input, projects.ErrInvalidName),
// or shorter than MinPrefix (ErrAmbiguousID). Find checks first; a command
// that must refuse bad input before it does anything else checks itself.
func (p Prefix[T]) Check(id string) error {
	bad := func(r rune) bool {
		return !strings.ContainsRune(p.Digits, unicode.ToUpper(r)) && !strings.ContainsRune(p.Digits, unicode.ToLower(r))
	}
	switch {
	case len(id) > p.Len || strings.ContainsFunc(id, bad):
		return &projects.NameError{Field: p.What + " id", Name: id, Reason: fmt.Sprintf("want at most %d characters of %s, in any case", p.Len, p.Digits)}
	case len(id) < MinPrefix:
		return fmt.Errorf("%w: %q is too short to name %s; give at least %d characters of its id", ErrAmbiguousID, id, article(p.What), MinPrefix)
	}
	return nil
}

// Find picks the one of all that id names.
func (p Prefix[T]) Find(id string, all []T) (T, error) {
	var zero T
	if err := p.Check(id); err != nil {
		return zero, err
	}
	var exact, starts []T
	for _, x := range all {
		switch xid := p.ID(x); {
		case strings.EqualFold(xid, id):
			exact = append(exact, x)
		case len(xid) > len(id) && strings.EqualFold(xid[:len(id)], id):
			starts = append(starts, x)
		}
	}
	found := starts
	if len(exact) > 0 {
		found = exact
	}
	switch len(found) {
	case 0:
		return zero, p.Missing(id)
	case 1:
		return found[0], nil
	}
	return zero, p.ambiguous(id, found)
}

// ambiguous lists, sorted by id, the first of the things id names.
func (p Prefix[T]) ambiguous(id string, found []T) error {
	sort.SliceStable(found, func(i, j int) bool { return p.ID(found[i]) < p.ID(found[j]) })
	var b strings.Builder
	fmt.Fprintf(&b, "%s names %s; give more of it:", id, record.Count(len(found), p.What))
	for i, x := range found {
		if i == mostCandidates {
			fmt.Fprintf(&b, "\nand %d more", len(found)-mostCandidates)
			break
		}
		fmt.Fprintf(&b, "\n%s  %s", p.ID(x), p.Describe(x))
	}
	return fmt.Errorf("%w: %s", ErrAmbiguousID, b.String())
}

func article(noun string) string {
	if strings.ContainsAny(noun[:1], "aeiou") {
		return "an " + noun
	}
	return "a " + noun
}

// Ids of events and batches (ULIDs), and of commits (SHA-1, as every
// repository meta works with).
const (
	ulidDigits   = projects.IDAlphabet
	commitDigits = "0123456789abcdef"
	commitLen    = 40
)

// Abbreviate gives the short form text output shows of each of ids: its
// first ShortLen characters, or as many more as tell it from every other
// of ids (events appended in one millisecond by one process differ only at
// the end). An id of ShortLen characters or fewer is its own short form;
// empty ones are left out.
func Abbreviate(ids []string) map[string]string {
	sorted := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "" })
	sort.Strings(sorted)
	out := make(map[string]string, len(sorted))
	for i, id := range sorted {
		n := ShortLen
		if i > 0 && sorted[i-1] != id {
			n = max(n, commonPrefix(sorted[i-1], id)+1)
		}
		if i+1 < len(sorted) && sorted[i+1] != id {
			n = max(n, commonPrefix(sorted[i+1], id)+1)
		}
		out[id] = id[:min(n, len(id))]
	}
	return out
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
