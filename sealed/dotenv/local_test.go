package dotenv

import (
	"slices"
	"testing"
)

// LocalDiff compares what abra reads, apart from what deploys write.
func TestLocalDiff(t *testing.T) {
	const sealed = "TYPE=app:1.3.0\nDOMAIN=app.example.org\nSECRET_X_VERSION=v1 # length=32\nQUOTED=\"a b\"\n"
	tests := []struct {
		name, local             string
		added, changed, removed []string
	}{
		{name: "the same file", local: sealed},
		{name: "another deployed version", local: "TYPE=app:1.5.0\nDOMAIN=app.example.org\nSECRET_X_VERSION=v1 # length=32\nQUOTED=\"a b\"\n"},
		{name: "no version yet", local: "TYPE=app\nDOMAIN=app.example.org\nSECRET_X_VERSION=v1 # length=32\nQUOTED=\"a b\"\n"},
		{name: "meta's stamp and comments", local: "# mine\nTYPE=app:1.5.0\nDOMAIN=app.example.org\nSECRET_X_VERSION=v1 # length=32\nQUOTED=\"a b\"\n# managed by meta\nOPERATOR_SYNC_VERSION=1.5.0\n"},
		{name: "quoting that reads the same", local: "TYPE='app:1.3.0'\nDOMAIN=\"app.example.org\"\nSECRET_X_VERSION=v1  #  length=32\nQUOTED='a b'\n"},
		{name: "another order", local: "QUOTED=\"a b\"\nDOMAIN=app.example.org\nSECRET_X_VERSION=v1 # length=32\nTYPE=app:1.3.0\n"},
		{name: "another recipe", local: "TYPE=other:1.3.0\nDOMAIN=app.example.org\nSECRET_X_VERSION=v1 # length=32\nQUOTED=\"a b\"\n", changed: []string{"TYPE"}},
		{name: "another value", local: "TYPE=app:1.3.0\nDOMAIN=new.example.org\nSECRET_X_VERSION=v1 # length=32\nQUOTED=\"a b\"\n", changed: []string{"DOMAIN"}},
		{name: "another modifier", local: "TYPE=app:1.3.0\nDOMAIN=app.example.org\nSECRET_X_VERSION=v1 # length=64\nQUOTED=\"a b\"\n", changed: []string{"SECRET_X_VERSION"}},
		{name: "a key more and one less", local: "TYPE=app:1.3.0\nDOMAIN=app.example.org\nSECRET_X_VERSION=v1 # length=32\nLOCAL=1\n", added: []string{"LOCAL"}, removed: []string{"QUOTED"}},
		{name: "a value abra cannot read", local: "TYPE=app:1.3.0\nDOMAIN=app.example.org\nSECRET_X_VERSION=v1 # length=32\nQUOTED=\"a b\n", changed: []string{"QUOTED"}},
	}
	s, err := Parse("sealed", []byte(sealed))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse("local", []byte(tt.local))
			if err != nil {
				t.Fatal(err)
			}
			c := LocalDiff(s, l)
			for _, want := range []struct {
				what      string
				got, want []string
			}{{"added", c.Added, tt.added}, {"changed", c.Changed, tt.changed}, {"removed", c.Removed, tt.removed}} {
				if !slices.Equal(want.got, want.want) && len(want.got)+len(want.want) > 0 {
					t.Errorf("%s %v, want %v", want.what, want.got, want.want)
				}
			}
			if back := LocalDiff(l, s); !slices.Equal(back.Added, c.Removed) || !slices.Equal(back.Removed, c.Added) || !slices.Equal(back.Changed, c.Changed) {
				t.Errorf("the other way: %+v against %+v", back, c)
			}
		})
	}
}

// SetVersion writes the recipe line as abra does; Recipe reads it.
func TestRecipeAndSetVersion(t *testing.T) {
	tests := []struct {
		name, in, version, want string
		ok                      bool
	}{
		{"TYPE", "A=1\nTYPE=app:1.3.0\n", "1.5.0+2", "A=1\nTYPE=app:1.5.0+2\n", true},
		{"RECIPE first", "RECIPE=app\nTYPE=old:1\n", "eb96de94+U", "RECIPE=app:eb96de94+U\nTYPE=old:1\n", true},
		{"quoted", "TYPE=\"app:1.3.0\"\n", "1.5.0", "TYPE=app:1.5.0\n", true},
		{"a comment kept", "TYPE=app:1.3.0  # pinned\n", "1.5.0", "TYPE=app:1.5.0 # pinned\n", true},
		{"none", "A=1\n", "1.5.0", "A=1\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if ok := f.SetVersion(tt.version); ok != tt.ok || string(f.Bytes()) != tt.want {
				t.Errorf("SetVersion: %v\n%s\nwant %v\n%s", ok, f.Bytes(), tt.ok, tt.want)
			}
			if _, _, v, ok := f.Recipe(); ok && v != tt.version {
				t.Errorf("Recipe reads version %q, want %q", v, tt.version)
			}
		})
	}
}

// Merge applies the other side's changes where this side left the keys
// alone, keeps this side's text, and names the keys both changed apart.
func TestMerge(t *testing.T) {
	const base = "# head\nA=1\nB=2\nC=3\nD=4\n"
	tests := []struct {
		name, mine, theirs, want string
		conflicts                []string
	}{
		{"apart", "# head, mine\nA=mine\nB=2\nC=3\nD=4\nMINE=1\n", "# head\nA=1\nB=theirs\nD=4\nTHEIRS=1\n",
			"# head, mine\nA=mine\nB=theirs\nD=4\nMINE=1\nTHEIRS=1\n", nil},
		{"the same change on both sides", "A=x\nB=2\nC=3\nD=4\n", "# head\nA=x\nB=2\nC=3\n",
			"A=x\nB=2\nC=3\n", nil},
		{"both changed a key", "# head\nA=mine\nB=2\nC=3\nD=4\n", "# head\nA=theirs\nB=2\nC=3\nD=4\n",
			"# head\nA=mine\nB=2\nC=3\nD=4\n", []string{"A"}},
		{"one changed, one removed", "# head\nB=2\nC=mine\nD=4\n", "# head\nA=theirs\nB=2\nD=4\n",
			"# head\nB=2\nC=mine\nD=4\n", []string{"A", "C"}},
		{"both added a key otherwise", "# head\nA=1\nB=2\nC=3\nD=4\nN=mine\n", "# head\nA=1\nB=2\nC=3\nD=4\nN=theirs\n",
			"# head\nA=1\nB=2\nC=3\nD=4\nN=mine\n", []string{"N"}},
		{"nothing of theirs", "A=9\n", base, "A=9\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := func(s string) File {
				f, err := Parse("f", []byte(s))
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			mine := p(tt.mine)
			got, conflicts := Merge(p(base), mine, p(tt.theirs))
			if string(got.Bytes()) != tt.want || !slices.Equal(conflicts, tt.conflicts) {
				t.Errorf("Merge:\n%s%v\nwant\n%s%v", got.Bytes(), conflicts, tt.want, tt.conflicts)
			}
			if string(mine.Bytes()) != tt.mine {
				t.Error("Merge changed mine")
			}
		})
	}
}
