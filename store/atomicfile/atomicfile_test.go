package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/afero"
)

func TestWrite(t *testing.T) {
	for name, fsys := range map[string]afero.Fs{"os": afero.NewBasePathFs(afero.NewOsFs(), t.TempDir()), "memory": afero.NewMemMapFs()} {
		t.Run(name, func(t *testing.T) {
			fsys.MkdirAll("d", 0o755)
			if err := Write(fsys, "d/f", []byte("one"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := Write(fsys, "d/f", []byte("two"), 0o644); err != nil {
				t.Fatal(err)
			}
			got, _ := afero.ReadFile(fsys, "d/f")
			fi, _ := fsys.Stat("d/f")
			if string(got) != "two" || fi.Mode().Perm() != 0o644 {
				t.Fatalf("file = %q, %v", got, fi.Mode())
			}
			if names, _ := afero.ReadDir(fsys, "d"); len(names) != 1 {
				t.Fatalf("temporary files left: %v", names)
			}
			if _, mem := fsys.(*afero.MemMapFs); !mem {
				if err := Write(fsys, "missing/f", []byte("x"), 0o644); err == nil {
					t.Fatal("a write into a missing directory succeeded")
				}
			}
		})
	}
}

// A mode the umask would narrow is the mode the file gets.
func TestWriteKeepsMode(t *testing.T) {
	dir := t.TempDir()
	if err := Write(afero.NewOsFs(), filepath.Join(dir, "env"), []byte("K=V\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "env"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v", fi.Mode(), err)
	}
}

// What a killed write leaves is removed by Discard, with the file.
func TestDiscard(t *testing.T) {
	fsys := afero.NewMemMapFs()
	afero.WriteFile(fsys, "d/f", []byte("x"), 0o644)
	afero.WriteFile(fsys, "d/.f"+tempMarker+"abc", []byte("half"), 0o644)
	afero.WriteFile(fsys, "d/.g"+tempMarker+"abc", []byte("other"), 0o644)
	if err := Discard(fsys, "d/f"); err != nil {
		t.Fatal(err)
	}
	names, _ := afero.ReadDir(fsys, "d")
	if len(names) != 1 || names[0].Name() != ".g"+tempMarker+"abc" {
		t.Fatalf("left %v", names)
	}
	afero.WriteFile(fsys, "d/.h"+tempMarker+"abc", []byte("half"), 0o644)
	afero.WriteFile(fsys, "d/h", []byte("whole"), 0o644)
	if err := RemoveTemps(fsys, "d/h"); err != nil {
		t.Fatal(err)
	}
	if names, _ := afero.ReadDir(fsys, "d"); len(names) != 2 {
		t.Fatalf("RemoveTemps left %v", names)
	}
	if err := Discard(fsys, "d/none"); err != nil {
		t.Fatalf("discard of nothing: %v", err)
	}
}
