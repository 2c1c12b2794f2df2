package dotenv

import "strings"

// An app's env file lives twice: sealed in the log, and as the plain file
// abra reads, $ABRA_DIR/servers/<server>/<domain>.env. Deploys write into
// the plain one only: abra the version into the recipe line, meta (meta
// stamp) the version into SyncVersionKey. Those are the deploy keys; the
// rules below compare and write the two files knowing them.

// SyncVersionKey is the key Co-op Cloud's Resolution 013 reserves for the
// version the operator log says is deployed.
const SyncVersionKey = "OPERATOR_SYNC_VERSION"

// recipeKeys name an app's recipe, "name" or, once abra deployed it,
// "name:version": RECIPE=, or TYPE= in older files. The first in the file
// counts, as for abra.
var recipeKeys = []string{"RECIPE", "TYPE"}

// Recipe returns the key of f's recipe line and the recipe and version it
// names; ok is false when f has none.
func (f File) Recipe() (key, recipe, version string, ok bool) {
	for _, l := range f.Lines {
		if l.Comment || !isRecipeKey(l.Key) {
			continue
		}
		v, _, err := f.Value(l.Key)
		if err != nil {
			v = l.Value
		}
		recipe, version, _ = strings.Cut(v, ":")
		return l.Key, recipe, version, true
	}
	return "", "", "", false
}

func isRecipeKey(k string) bool { return k == recipeKeys[0] || k == recipeKeys[1] }

// SetVersion writes version into f's recipe line, "name:version", as abra
// does when it deploys, keeping a comment after it; it reports whether f
// has a recipe line.
func (f *File) SetVersion(version string) bool {
	key, recipe, _, ok := f.Recipe()
	if !ok {
		return false
	}
	v := recipe
	if version != "" {
		v += ":" + version
	}
	for i, l := range f.Lines {
		if !l.Comment && l.Key == key {
			if _, comment, err := value(l.Value, nil); err == nil && comment != "" {
				v += " " + comment
			}
			f.Lines[i].Value = v
		}
	}
	return true
}

// LocalDiff names the keys added, changed and removed from old to new, of
// an app's plain env file and its sealed one, by what abra reads: each
// value as Value reads it, with the comment after it (abra's modifiers,
// "# length=128"), and apart from the deploy keys (the recipe line's
// version and SyncVersionKey), which deploys change in the plain file
// alone. Quoting that reads the same is no change; a value abra cannot
// read is compared as stored. It is the one rule for "does this file say
// what the log says", for `meta env export` and for what a deploy records.
func LocalDiff(old, new File) Changes { return changes(old.asRead(), new.asRead()) }

func (f File) asRead() keyed {
	k := keyed{vals: map[string]string{}}
	known := map[string]string{}
	for _, l := range f.Lines {
		if l.Comment || l.Key == SyncVersionKey {
			continue
		}
		v, comment, err := value(l.Value, known)
		if err != nil {
			v, comment = "\x00"+l.Value, ""
		} else {
			known[l.Key] = v
		}
		if isRecipeKey(l.Key) {
			v, _, _ = strings.Cut(v, ":")
		}
		k.keys = append(k.keys, l.Key)
		// Modifiers are words: how many blanks part them is no difference.
		k.vals[l.Key] = v + "\x00" + strings.Join(strings.Fields(strings.TrimPrefix(comment, "#")), " ")
	}
	return k
}
