package gitrepo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo/internal/gitindex"
)

// These benchmarks are the measurement behind keeping two git formats
// hand-written (see the package's format notes and the README): moving a
// ref and adding an index entry, each done by meta's own code and by git's
// plumbing, on a log of 100k events. Everything else git-related either
// goes through the git binary or go-git.
//
//	go test -run X -bench 'RefUpdate|IndexAdd' ./store/gitrepo/

func benchLog(b *testing.B) string {
	b.Helper()
	base := os.Getenv("META_BENCH_DIR")
	if base == "" {
		base = filepath.Join(os.TempDir(), "meta-bench")
	}
	dir, err := fixture.Cached(base, 1000, 100)
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

func gitIn(b *testing.B, dir string, args ...string) string {
	b.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// BenchmarkRefUpdate moves a ref between two commits with a compare and
// swap, as every commit does.
func BenchmarkRefUpdate(b *testing.B) {
	dir := benchLog(b)
	r, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	tips := [2]Hash{NewHash(gitIn(b, dir, "rev-parse", "HEAD")), NewHash(gitIn(b, dir, "rev-parse", "HEAD~1"))}
	const ref = "refs/heads/meta-bench-probe"
	defer gitIn(b, dir, "update-ref", "-d", ref)
	sig := Signature{Name: "Bench", When: time.Now()}
	b.Run("meta", func(b *testing.B) {
		gitIn(b, dir, "update-ref", ref, tips[0].String())
		for i := 0; i < b.N; i++ {
			if _, err := r.updateRef(ref, tips[i%2], tips[(i+1)%2], sig, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("git-update-ref", func(b *testing.B) {
		gitIn(b, dir, "update-ref", ref, tips[0].String())
		for i := 0; i < b.N; i++ {
			// core.fsync=reference makes git sync the ref, as meta does.
			gitIn(b, dir, "-c", "core.fsync=reference", "update-ref", "-m", "bench", ref, tips[(i+1)%2].String(), tips[i%2].String())
		}
	})
}

// BenchmarkIndexAdd records one new file in the split index of the log, as
// every commit does.
func BenchmarkIndexAdd(b *testing.B) {
	dir := benchLog(b)
	blob := gitIn(b, dir, "rev-parse", "HEAD:meta.yaml")
	fi, err := os.Stat(filepath.Join(dir, "meta.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	defer gitIn(b, dir, "rm", "-q", "--cached", "-r", "--ignore-unmatch", "bench-probe")
	b.Run("meta", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			e := gitindex.Entry{Path: "bench-probe/m" + strconv.Itoa(i), Hash: NewHash(blob), Stat: gitindex.StatOf(fi)}
			if err := gitindex.Add(filepath.Join(dir, ".git", "index"), e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("git-update-index", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			gitIn(b, dir, "-c", "core.splitIndex=true", "update-index", "--add", "--cacheinfo", "100644,"+blob+",bench-probe/g"+strconv.Itoa(i))
		}
	})
}
