package sealed

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
)

// The helper as meta runs it: the real meta-seal binary, keys and values
// through pipes only.
func TestHelperRoundTrip(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, HelperName)
	if out, err := exec.Command("go", "build", "-o", bin, "git.coopcloud.tech/coop-cloud/meta/cmd/meta-seal").CombinedOutput(); err != nil {
		t.Fatalf("build meta-seal: %v\n%s", err, out)
	}
	keyFile := filepath.Join(dir, "key.txt")
	if out, err := exec.Command("age-keygen", "-o", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen (installed by .ci/run): %v\n%s", err, out)
	}
	pub, _ := exec.Command("age-keygen", "-y", keyFile).Output()
	recipient := strings.TrimSpace(string(pub))
	id, err := FindIdentity(keyFile, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	h := Helper{Path: bin}
	ctx := context.Background()
	files := []dotenv.File{{Lines: []dotenv.Line{{Key: "A", Value: "1"}}}, {Lines: []dotenv.Line{{Comment: true, Value: " c"}, {Key: "B", Value: "two words"}}}}
	sealedFiles, err := h.Seal(ctx, files, [][]string{{recipient}, {recipient}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sealedFiles {
		if got := Recipients(s); len(got) != 1 || got[0] != recipient {
			t.Fatalf("Recipients = %v", got)
		}
		if len(ClearKeys(s)) != 0 {
			t.Fatalf("clear keys in %s", s)
		}
	}
	opened, errs, err := h.Open(ctx, id, append(sealedFiles, []byte("A=1\n"))...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if errs[i] != nil || string(opened[i].Bytes()) != string(files[i].Bytes()) {
			t.Fatalf("file %d: %v\n%s", i, errs[i], opened[i].Bytes())
		}
	}
	if !errors.Is(errs[2], ErrNotSealed) {
		t.Fatalf("a plain file: %v", errs[2])
	}
	if _, err := h.Seal(ctx, files[:1], [][]string{{"AGE-SECRET-KEY-1"}}); !errors.Is(err, ErrRecipient) {
		t.Fatalf("a secret key as recipient: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	}
}
