package dotenv

import "sort"

// Merge puts theirs' changes from base onto mine: the keys theirs added,
// changed or removed since base, where mine did not touch them, are set or
// removed in a copy of mine, which keeps mine's order and comments (a key
// theirs added goes at the end). conflicts are the keys both changed, to
// different ends; merged holds mine's side of each. Values are compared as
// stored.
func Merge(base, mine, theirs File) (merged File, conflicts []string) {
	merged = mine.Clone()
	touched := map[string]bool{}
	ours := Diff(base, mine)
	for _, k := range concat(ours) {
		touched[k] = true
	}
	for _, k := range concat(Diff(base, theirs)) {
		mv, inMine := mine.Get(k)
		tv, inTheirs := theirs.Get(k)
		switch {
		case !touched[k] && inTheirs:
			merged.put(k, tv)
		case !touched[k]:
			merged.Unset(k)
		case inMine != inTheirs || mv != tv:
			conflicts = append(conflicts, k)
		}
	}
	sort.Strings(conflicts)
	return merged, conflicts
}

func concat(c Changes) []string {
	return append(append(append([]string(nil), c.Added...), c.Changed...), c.Removed...)
}

// put is Set for a key and value read from a file already.
func (f *File) put(key, value string) {
	for i, l := range f.Lines {
		if !l.Comment && l.Key == key {
			f.Lines[i].Value = value
			return
		}
	}
	f.Lines = append(f.Lines, Line{Key: key, Value: value})
}
