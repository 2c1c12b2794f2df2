package sopsfile

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sopsage "github.com/getsops/sops/v3/age"

	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
)

// key makes an age key with the real age-keygen and returns its file,
// recipient and parsed identity.
func key(t *testing.T) (string, string, sopsage.ParsedIdentities) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.txt")
	if out, err := exec.Command("age-keygen", "-o", p).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen (installed by .ci/run): %v\n%s", err, out)
	}
	pub, err := exec.Command("age-keygen", "-y", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	ids, _, err := parseIdentities(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return p, strings.TrimSpace(string(pub)), ids
}

// sops runs the real sops CLI with the identity in its own environment.
func sopsCLI(t *testing.T, keyFile string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("sops", args...)
	cmd.Env = append(os.Environ(), "SOPS_AGE_KEY_FILE="+keyFile, "SOPS_DISABLE_VERSION_CHECK=1")
	return cmd.Output()
}

const plain = "# Domain\nDOMAIN=app.example.org\nSMTP_PASSWORD=hunter2\nMULTI=a\\nb\nSECRET_KEY_BASE_VERSION=v1 # length=128\n"

func TestMetaWritesWhatSopsReads(t *testing.T) {
	keyFile, recipient, _ := key(t)
	f, err := dotenv.Parse("plain", []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	data, err := Seal(f, []string{recipient}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "hunter2") {
		t.Fatal("a value is in clear")
	}
	p := filepath.Join(t.TempDir(), "app.env")
	os.WriteFile(p, data, 0o600)
	out, err := sopsCLI(t, keyFile, "decrypt", p)
	if err != nil {
		t.Fatalf("sops decrypt: %v", err)
	}
	if string(out) != plain {
		t.Fatalf("sops decrypts meta's file to\n%s\nwant\n%s", out, plain)
	}
}

func TestMetaReadsWhatSopsWrites(t *testing.T) {
	keyFile, recipient, ids := key(t)
	p := filepath.Join(t.TempDir(), "app.env")
	os.WriteFile(p, []byte(plain), 0o600)
	data, err := sopsCLI(t, keyFile, "encrypt", "--age", recipient, p)
	if err != nil {
		t.Fatalf("sops encrypt: %v", err)
	}
	f, err := Open(data, ids)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Bytes()) != plain {
		t.Fatalf("meta reads sops's file as\n%s\nwant\n%s", f.Bytes(), plain)
	}
}

func TestOpenRefuses(t *testing.T) {
	_, alice, aliceIDs := key(t)
	_, _, bobIDs := key(t)
	f, _ := dotenv.Parse("plain", []byte(plain))
	data, err := Seal(f, []string{alice}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(data), "DOMAIN=ENC[AES256_GCM,data:", "DOMAIN=ENC[AES256_GCM,data:AA", 1)
	macless := strings.Replace(string(data), "sops_mac=ENC[AES256_GCM,data:", "sops_mac=ENC[AES256_GCM,data:AA", 1)
	tests := []struct {
		name string
		data string
		ids  sopsage.ParsedIdentities
		want error
	}{
		{"not a recipient", string(data), bobIDs, sealed.ErrNotRecipient},
		{"a changed value", tampered, aliceIDs, sealed.ErrTampered},
		{"a changed MAC", macless, aliceIDs, sealed.ErrTampered},
		{"a plain file", plain, aliceIDs, sealed.ErrNotSealed},
		{"no metadata", "sops_mac=x\nA=1\n", aliceIDs, sealed.ErrNotSealed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open([]byte(tt.data), tt.ids); !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
		})
	}
}

// Serve answers per file and names the identity's recipient when it cannot
// decrypt, so meta can tell the operator who they are.
func TestServe(t *testing.T) {
	_, alice, _ := key(t)
	bobFile, bob, _ := key(t)
	f, _ := dotenv.Parse("plain", []byte(plain))
	resp := Serve(sealed.Request{Protocol: sealed.Protocol, Ops: []sealed.Op{{Seal: &f, Recipients: []string{alice}}, {Seal: &f, Recipients: []string{"age1nope"}}}})
	if resp.Results[0].Error != nil || resp.Results[1].Error.Code != sealed.CodeRecipient {
		t.Fatalf("seal results: %+v", resp.Results)
	}
	bobKey, _ := os.ReadFile(bobFile)
	resp = Serve(sealed.Request{Protocol: sealed.Protocol, Identity: string(bobKey), Ops: []sealed.Op{{Open: resp.Results[0].Sealed}}})
	e := resp.Results[0].Error
	if e == nil || e.Code != sealed.CodeNotRecipient || len(e.Yours) != 1 || e.Yours[0] != bob {
		t.Fatalf("open by bob: %+v", e)
	}
	if resp := Serve(sealed.Request{Protocol: sealed.Protocol, Identity: "not a key", Ops: []sealed.Op{{Open: []byte("x")}}}); resp.Error == nil || resp.Error.Code != sealed.CodeNoIdentity {
		t.Fatalf("bad identity: %+v", resp.Error)
	}
}

// The crypto of one 100-key env file, without process start-up; bench/env.sh
// measures whole commands.
func BenchmarkSealOpen100Keys(b *testing.B) {
	p := filepath.Join(b.TempDir(), "key.txt")
	if out, err := exec.Command("age-keygen", "-o", p).CombinedOutput(); err != nil {
		b.Fatalf("age-keygen: %v\n%s", err, out)
	}
	pub, _ := exec.Command("age-keygen", "-y", p).Output()
	data, _ := os.ReadFile(p)
	ids, _, _ := parseIdentities(string(data))
	var f dotenv.File
	for i := 0; i < 100; i++ {
		f.Set(fmt.Sprintf("KEY_%d", i), strings.Repeat("v", 32))
	}
	for b.Loop() {
		sealedFile, err := Seal(f, []string{strings.TrimSpace(string(pub))}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Open(sealedFile, ids); err != nil {
			b.Fatal(err)
		}
	}
}
