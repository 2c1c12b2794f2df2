package sealed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
)

// standIn writes a shell script into a temporary directory as meta-seal
// and returns the helper that runs it.
func standIn(t *testing.T, script string, mode os.FileMode) Helper {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("stand-in helpers are shell scripts")
	}
	p := filepath.Join(t.TempDir(), HelperName)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	return Helper{Path: p}
}

// What a user needs to fix any of these: the command installing meta's
// meta-seal (a test binary is a build from source: no module version).
const installCommand = "`go install " + ModulePath + "/cmd/meta-seal@"

// A meta-seal from another build, or something that is not meta-seal at
// all, gets an error naming its path and the install command, and nothing
// it answered is used: nothing is decrypted or sealed.
func TestHelperOfAnotherBuild(t *testing.T) {
	// Each answer carries a result that would be used if meta believed it.
	const result = `"results":[{"sealed":"c2VhbGVk","file":{"lines":[{"key":"A","value":"1"}]}}]`
	tests := []struct {
		name   string
		script string
		mode   os.FileMode
		want   error
		says   []string
	}{
		{"an old meta-seal, without a protocol field", `cat >/dev/null; echo '{` + result + `}'`, 0o755,
			ErrHelperVersion, []string{"no version: older than this meta", "protocol 1"}},
		{"a newer meta-seal", `cat >/dev/null; echo '{"protocol":2,` + result + `}'`, 0o755,
			ErrHelperVersion, []string{"speaks protocol 2, this meta protocol 1"}},
		{"a newer meta-seal refusing the request", `cat >/dev/null; echo '{"protocol":2,"error":{"code":"protocol","message":"meta-seal speaks protocol 2"}}'`, 0o755,
			ErrHelperVersion, []string{"speaks protocol 2, this meta protocol 1"}},
		{"a matching version refusing the request", `cat >/dev/null; echo '{"protocol":1,"error":{"code":"protocol","message":"the request has protocol 3"}}'`, 0o755,
			ErrHelperVersion, []string{"the request has protocol 3"}},
		{"non-JSON", `cat >/dev/null; echo 'usage: meta-seal [flags]'`, 0o755,
			ErrHelperFailed, []string{"something other than meta-seal's JSON"}},
		{"nothing", `cat >/dev/null`, 0o755,
			ErrHelperFailed, []string{"answered nothing"}},
		{"exit 1", `cat >/dev/null; echo 'no such thing' >&2; exit 1`, 0o755,
			ErrHelperFailed, []string{"exit status 1: no such thing"}},
		{"not executable", `echo '{"protocol":1}'`, 0o644,
			ErrHelperFailed, []string{"permission denied"}},
		// A fake of the right protocol that answers empty results: taken at
		// its word it would open every env as empty and seal one as
		// nothing (review F9).
		{"a fake answering nothing of use", `cat >/dev/null; echo '{"protocol":1,"results":[{}]}'`, 0o755,
			ErrHelperFailed, []string{"not meta's meta-seal"}},
		{"a fake sealing into plain text", `cat >/dev/null; echo '{"protocol":1,"results":[{"sealed":"QT0xCg=="}]}'`, 0o755,
			ErrHelperFailed, []string{"not meta's meta-seal"}},
	}
	ctx := context.Background()
	secret := dotenv.File{Lines: []dotenv.Line{{Key: "SMTP_PASSWORD", Value: "hunter2"}}}
	id := Identity{Source: "test", Text: "AGE-SECRET-KEY-1NOTAREALKEY"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := standIn(t, tt.script, tt.mode)
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, tt.want) {
					t.Fatalf("%s: %v, want %v", op, err, tt.want)
				}
				msg := err.Error()
				for _, s := range append([]string{h.Path, installCommand}, tt.says...) {
					if !strings.Contains(msg, s) {
						t.Errorf("%s: %q does not say %q", op, msg, s)
					}
				}
				if strings.Contains(msg, "hunter2") || strings.Contains(msg, id.Text) {
					t.Errorf("%s: a value or the identity is in %q", op, msg)
				}
			}
			out, err := h.Seal(ctx, []dotenv.File{secret}, [][]string{{"age1x"}})
			check("Seal", err)
			if out != nil {
				t.Errorf("Seal sealed %q", out)
			}
			files, errs, err := h.Open(ctx, id, []byte("sops_mac=x\n"))
			check("Open", err)
			if files != nil || errs != nil {
				t.Errorf("Open opened %v, %v", files, errs)
			}
		})
	}
}

// The request says which protocol meta speaks, and an answer of the same
// one is used.
func TestHelperSendsProtocol(t *testing.T) {
	dir := t.TempDir()
	req := filepath.Join(dir, "request.json")
	// The answer is a sealed file as far as meta can tell: sops metadata.
	h := standIn(t, `cat >'`+req+`'; echo '{"protocol":1,"results":[{"sealed":"c29wc19tYWM9eAo="}]}'`, 0o755)
	out, err := h.Seal(context.Background(), []dotenv.File{{}}, [][]string{{"age1x"}})
	if err != nil || len(out) != 1 || string(out[0]) != "sops_mac=x\n" {
		t.Fatalf("Seal: %q, %v", out, err)
	}
	sent, err := os.ReadFile(req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(sent), `{"protocol":1,`) {
		t.Fatalf("request %s", sent)
	}
}

// A stopped helper is not a broken one: no advice to reinstall.
func TestHelperStopped(t *testing.T) {
	h := standIn(t, `sleep 10`, 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Run(ctx, Request{})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrHelperFailed) || !strings.Contains(err.Error(), h.Path) {
		t.Fatalf("Run: %v", err)
	}
}

func TestInstallCommands(t *testing.T) {
	tests := []struct {
		version, helper, both string
	}{
		{"v1.2.3",
			"`go install git.coopcloud.tech/coop-cloud/meta/cmd/meta-seal@v1.2.3`",
			"`go install git.coopcloud.tech/coop-cloud/meta/cmd/...@v1.2.3`"},
		{"",
			"`go install ./cmd/...` in meta's source (or `go install git.coopcloud.tech/coop-cloud/meta/cmd/meta-seal@latest` beside the latest meta)",
			"`go install ./cmd/...` in meta's source"},
	}
	for _, tt := range tests {
		if got := installHelperAt(tt.version); got != tt.helper {
			t.Errorf("installHelperAt(%q) = %s", tt.version, got)
		}
		if got := installBothAt(tt.version); got != tt.both {
			t.Errorf("installBothAt(%q) = %s", tt.version, got)
		}
	}
}
