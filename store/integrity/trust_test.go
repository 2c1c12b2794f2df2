package integrity

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A person with a key made by ssh-keygen.
type signer struct {
	name, priv, pub string
}

func keygen(t *testing.T, name string) signer {
	t.Helper()
	priv := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name+"@laptop", "-f", priv).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return signer{name, priv, strings.TrimSpace(string(pub))}
}

// signed commits everything with the git CLI, signed with s's key.
func (h *history) signed(s signer, msg string) string {
	h.git("add", "-A")
	h.git("-c", "gpg.format=ssh", "-c", "user.signingkey="+s.priv, "commit", "-q", "-S", "--allow-empty", "-m", msg)
	return h.git("rev-parse", "HEAD")
}

// operators writes a meta.yaml listing ops with their ssh keys.
func (h *history) operators(required bool, ops ...signer) {
	y := "version: 2\nproject: coop\nenv: prod\n"
	if required {
		y += "signatures: required\n"
	}
	y += "operators:\n"
	for i, o := range ops {
		y += "  - name: " + o.name + "\n    age: age1" + strings.Repeat(string(rune('q'+i)), 58) + "\n    ssh: " + o.pub + "\n"
	}
	h.write("meta.yaml", y)
}

func TestTrustRule(t *testing.T) {
	alice, bob, mallory := keygen(t, "alice"), keygen(t, "bob"), keygen(t, "mallory")
	// Each case starts from a log whose operators alice and bob were
	// listed (unsigned, before the policy), and alice's signed adoption.
	tests := []struct {
		name  string
		steps func(h *history) (excluded []string)
		want  []string
	}{
		{"operators sign, with the git CLI", func(h *history) []string {
			h.event("a.example.com", "1")
			h.signed(alice, "alice deploys")
			h.event("a.example.com", "2")
			h.signed(bob, "bob deploys")
			return nil
		}, nil},
		{"an unsigned commit", func(h *history) []string {
			p, _ := h.event("a.example.com", "6.6.6")
			h.commit("unsigned deploy")
			return []string{p}
		}, []string{"unsigned deploy: " + NotSigned}},
		{"a stranger's key", func(h *history) []string {
			p, _ := h.event("a.example.com", "6.6.6")
			h.signed(mallory, "stranger deploys")
			return []string{p}
		}, []string{"stranger deploys: " + NotOperator + " at its parent (SHA256"}},
		{"a stranger adds themselves, then deploys", func(h *history) []string {
			h.operators(true, alice, bob, mallory)
			h.signed(mallory, "mallory joins")
			p, _ := h.event("a.example.com", "6.6.6")
			h.signed(mallory, "mallory deploys")
			return []string{p}
		}, []string{"mallory deploys: " + NotOperator + " at its parent (SHA256", "mallory joins: " + NotOperator + " at its parent (SHA256"}},
		{"a removed operator signs after removal", func(h *history) []string {
			h.event("a.example.com", "1")
			h.signed(bob, "bob deploys while listed")
			h.operators(true, alice)
			h.signed(alice, "alice removes bob")
			p, _ := h.event("a.example.com", "6.6.6")
			h.signed(bob, "bob deploys after removal")
			return []string{p}
		}, []string{"bob deploys after removal: " + NotOperator + " at its parent (SHA256"}},
		{"a stranger turns the policy off", func(h *history) []string {
			h.operators(false, alice, bob)
			h.signed(mallory, "policy off")
			p, _ := h.event("a.example.com", "6.6.6")
			h.commit("unsigned after policy off")
			return []string{p}
		}, []string{"policy off: " + NotOperator + " at its parent (SHA256", "unsigned after policy off: " + NotSigned}},
		{"an operator turns the policy off", func(h *history) []string {
			h.operators(false, alice, bob)
			h.signed(alice, "policy off")
			h.event("a.example.com", "1")
			h.commit("unsigned, allowed again")
			return nil
		}, nil},
		{"a fork from below the policy, merged so that it comes first", func(h *history) []string {
			root := h.git("rev-list", "--max-parents=0", "HEAD")
			h.event("a.example.com", "1")
			h.signed(alice, "alice deploys")
			h.git("checkout", "-q", "-b", "side", root)
			p, _ := h.event("a.example.com", "6.6.6")
			h.commit("side: forged")
			h.git("merge", "-q", "--no-edit", "-m", "merge main into side", "main")
			return []string{p}
		}, []string{"merge main into side: " + NotSigned, "side: forged: " + NotSigned}},
		{"a removed operator's fork from before the removal, merged first", func(h *history) []string {
			h.event("a.example.com", "1")
			beforeRemoval := h.signed(bob, "bob deploys while listed")
			h.operators(true, alice)
			h.signed(alice, "alice removes bob")
			h.git("checkout", "-q", "-b", "side", beforeRemoval)
			p, _ := h.event("a.example.com", "6.6.6")
			h.signed(bob, "bob's fork")
			h.git("-c", "gpg.format=ssh", "-c", "user.signingkey="+bob.priv, "merge", "-q", "-S", "--no-edit", "-m", "bob merges main", "main")
			return []string{p}
		}, []string{"bob merges main: " + NotOperator + " at its parent (SHA256", "bob's fork: " + NotOperator + " at its parent (SHA256"}},
		{"a signed commit tampered into another", func(h *history) []string {
			p, _ := h.event("a.example.com", "1")
			h.signed(alice, "alice deploys")
			// The same signature on other content: cat-file, edit, hash-object.
			raw := h.git("cat-file", "commit", "HEAD")
			forged := strings.Replace(raw, "alice deploys", "alice deploys 6.6.6", 1)
			cmd := exec.Command("git", "hash-object", "-t", "commit", "-w", "--stdin")
			cmd.Dir, cmd.Stdin = h.dir, strings.NewReader(forged+"\n")
			id, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			h.git("reset", "-q", "--soft", strings.TrimSpace(string(id)))
			return []string{p}
		}, []string{"alice deploys 6.6.6: " + BadSig}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(t)
			h.operators(false, alice, bob)
			h.commit("operators, unsigned, before the policy")
			h.operators(true, alice, bob)
			h.signed(alice, "signatures required")
			excluded := tt.steps(h)
			for _, contents := range []bool{false, true} {
				st := h.check(New(), contents)
				got := problems(st)
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("contents %v: findings\n%s\nwant\n%s", contents, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
				}
				for _, p := range excluded {
					if st.Excluded[p] == "" {
						t.Errorf("contents %v: %s is not left out", contents, p)
					}
				}
				cfg, err := st.trusted(h.repo)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range cfg.Operators {
					if o.Name == "mallory" {
						t.Errorf("contents %v: mallory is trusted", contents)
					}
				}
			}
		})
	}
}
