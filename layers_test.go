package meta_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "git.coopcloud.tech/coop-cloud/meta"

// layers ranks every package of the module, bottom first. A package may
// import only packages of a lower rank: the dependency tree runs one way,
// and nothing reaches around the layer below it. docs/ARCHITECTURE.md
// explains each.
var layers = map[string]int{
	"gen/meta/v1":      0,
	"projects":         0,
	"sealed/dotenv":    0,
	"store/atomicfile": 0,
	"store/signing":    0,

	"store/record":                    1,
	"store/gitrepo/internal/gitindex": 1,
	"sealed":                          1,
	"hub/tokens":                      1,
	"store/signing/signingtest":       1,

	"store/gitrepo":   2,
	"swarm":           2,
	"abra":            2,
	"store/fold":      2,
	"store/config":    2,
	"notify":          2,
	"sealed/sopsfile": 2,

	"store/cache":     3,
	"swarm/swarmtest": 3,
	"store/integrity": 3,

	"store": 4,

	"envs":         5,
	"opsync":       5,
	"doctor":       5,
	"rollout/plan": 5,

	"hub/page":          6,
	"rollout":           6,
	"notify/notifytest": 6,
	"bench/fixture":     6,
	"hub":               7,
	"bench/follow":      8,
	"bench/mkrepo":      8,
	"bench/signlog":     8,
	"cmd/meta":          8,
	"cmd/meta-seal":     8,
	"":                  9, // this package: docs and this test
}

// only names the one package that may import each outside library that a
// rule keeps behind one door.
var only = map[string]string{
	"github.com/go-git/go-git/v5":   "store/gitrepo",
	"github.com/go-git/go-billy/v5": "store/gitrepo",
	"github.com/getsops/sops/v3":    "sealed/sopsfile",
}

type pkg struct {
	ImportPath string
	Imports    []string
}

func TestPackagesImportOnlyDownward(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rank, ok := layers[name]
		if !ok {
			t.Errorf("package %s has no layer: add it to layers and to docs/ARCHITECTURE.md", name)
			continue
		}
		for _, imp := range p.Imports {
			for lib, door := range only {
				if (imp == lib || strings.HasPrefix(imp, lib+"/")) && name != door {
					t.Errorf("%s imports %s, which only %s may", name, imp, door)
				}
			}
			dep, ours := strings.CutPrefix(imp, module+"/")
			if !ours {
				continue
			}
			if r, ok := layers[dep]; ok && r >= rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): packages import only downward", name, rank, dep, r)
			}
		}
	}
}
