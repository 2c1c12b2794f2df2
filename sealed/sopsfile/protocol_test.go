package sopsfile

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
)

// meta-seal, in process, answers a request of its own protocol and refuses
// any other as a whole, without looking further: here not even at an
// identity that would otherwise be refused.
func TestMainProtocol(t *testing.T) {
	_, alice, _ := key(t)
	f, _ := dotenv.Parse("plain", []byte(plain))
	ops := []sealed.Op{{Seal: &f, Recipients: []string{alice}}}
	open := []sealed.Op{{Open: []byte("sops_mac=x\n")}}
	tests := []struct {
		name     string
		protocol any // nil: no protocol field, as a meta before versioning sends
		ops      []sealed.Op
		identity string
		code     string // "" for an answer
		says     []string
	}{
		{"the same version", sealed.Protocol, ops, "", "", nil},
		{"the same version, a bad identity", sealed.Protocol, open, "not a key", sealed.CodeNoIdentity, nil},
		{"no version", nil, ops, "", sealed.CodeProtocol,
			[]string{"meta-seal speaks protocol 1 but the request has no version: meta is older than this meta-seal", "`go install ./cmd/...`"}},
		{"a newer version", sealed.Protocol + 1, open, "not a key", sealed.CodeProtocol,
			[]string{"meta-seal speaks protocol 1 but the request has protocol 2"}},
		{"version 0", 0, ops, "", sealed.CodeProtocol, []string{"no version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := map[string]any{"ops": tt.ops, "identity": tt.identity}
			if tt.protocol != nil {
				req["protocol"] = tt.protocol
			}
			in, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := Main(nil, bytes.NewReader(in), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var resp sealed.Response
			if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
				t.Fatalf("%v: %s", err, stdout.String())
			}
			if resp.Protocol != sealed.Protocol {
				t.Errorf("response protocol %d", resp.Protocol)
			}
			if tt.code == "" {
				if resp.Error != nil || len(resp.Results) != 1 || len(resp.Results[0].Sealed) == 0 {
					t.Fatalf("response %s", stdout.String())
				}
				return
			}
			if resp.Error == nil || resp.Error.Code != tt.code || len(resp.Results) != 0 {
				t.Fatalf("response %s, want code %s and no results", stdout.String(), tt.code)
			}
			for _, s := range tt.says {
				if !strings.Contains(resp.Error.Message, s) {
					t.Errorf("%q does not say %q", resp.Error.Message, s)
				}
			}
		})
	}
}

func TestMainArgs(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
	}{
		{[]string{"--version"}, 0, "meta-seal protocol 1, git.coopcloud.tech/coop-cloud/meta "},
		{[]string{"--version", "x"}, 2, ""},
		{[]string{"seal"}, 2, ""},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := Main(tt.args, strings.NewReader(""), &stdout, &stderr)
		if code != tt.code || !strings.HasPrefix(stdout.String(), tt.stdout) || (tt.stdout == "" && stdout.Len() > 0) {
			t.Errorf("meta-seal %v: exit %d, %q, %q", tt.args, code, stdout.String(), stderr.String())
		}
	}
}
