package hub

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Payloads shaped like the forges' own push events (trimmed).
const giteaPush = `{"ref":"refs/heads/main","before":"1b40c79da8153fab61f7e444cb3ec31ea73d5c0b","after":"7f0a0fe10c69a26f439d0943571136c841a35a0a",
"compare_url":"https://git.example.org/coop/ops-log/compare/1b40c79...7f0a0fe",
"commits":[{"id":"7f0a0fe10c69a26f439d0943571136c841a35a0a","message":"deploy matrix.example.com 4.0.0+v1.93.0 by Alice\n","url":"https://git.example.org/coop/ops-log/commit/7f0a0fe","author":{"name":"Alice","email":"alice@example.com"}}],
"repository":{"id":7,"name":"ops-log","full_name":"coop/ops-log","clone_url":"https://git.example.org/coop/ops-log.git"},
"pusher":{"login":"alice"},"sender":{"login":"alice"}}`

const githubPush = `{"ref":"refs/heads/main","before":"1b40c79da8153fab61f7e444cb3ec31ea73d5c0b","after":"7f0a0fe10c69a26f439d0943571136c841a35a0a",
"repository":{"id":7,"full_name":"coop/ops-log"},"pusher":{"name":"alice","email":"alice@example.com"},
"commits":[{"id":"7f0a0fe10c69a26f439d0943571136c841a35a0a","message":"deploy matrix.example.com"}],"head_commit":{"id":"7f0a0fe10c69a26f439d0943571136c841a35a0a"}}`

func sign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

func TestWebhooks(t *testing.T) {
	const secret = "whs3cret"
	h := &Hub{cfg: Config{Store: newLog(t), WebhookSecret: []byte(secret)}, wake: make(chan struct{}, 1)}
	srv := httptest.NewServer(h.routes())
	defer srv.Close()
	woken := func() bool {
		select {
		case <-h.wake:
			return true
		default:
			return false
		}
	}
	type req struct {
		name    string
		path    string
		headers map[string]string
		body    string
		status  int
		wakes   bool
	}
	tests := []req{
		{"gitea push", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": "d1", "X-Gitea-Signature": sign(secret, giteaPush)}, giteaPush, 202, true},
		{"gitea replay", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": "d1", "X-Gitea-Signature": sign(secret, giteaPush)}, giteaPush, 200, false},
		{"forgejo push", "/hooks/forgejo", map[string]string{"X-Forgejo-Event": "push", "X-Forgejo-Delivery": "d2", "X-Forgejo-Signature": sign(secret, giteaPush)}, giteaPush, 202, true},
		{"forgejo with only the gitea header", "/hooks/forgejo", map[string]string{"X-Forgejo-Event": "push", "X-Forgejo-Delivery": "d3", "X-Gitea-Signature": sign(secret, giteaPush)}, giteaPush, 202, true},
		{"github push", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d4", "X-Hub-Signature-256": "sha256=" + sign(secret, githubPush)}, githubPush, 202, true},
		{"github ping", "/hooks/github", map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + sign(secret, `{"zen":"hi"}`)}, `{"zen":"hi"}`, 200, false},
		{"not a push", "/hooks/gitea", map[string]string{"X-Gitea-Event": "issues", "X-Gitea-Signature": sign(secret, `{}`)}, `{}`, 202, false},
		{"wrong secret", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": "d5", "X-Gitea-Signature": sign("guess", giteaPush)}, giteaPush, 401, false},
		{"tampered body", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": "d6", "X-Gitea-Signature": sign(secret, giteaPush)}, strings.Replace(giteaPush, "main", "evil", 1), 401, false},
		{"github without prefix", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(secret, githubPush)}, githubPush, 401, false},
		{"no signature", "/hooks/github", map[string]string{"X-GitHub-Event": "push"}, githubPush, 401, false},
		{"signature not hex", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": "zz"}, giteaPush, 401, false},
		{"signed garbage", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": sign(secret, "garbage")}, "garbage", 400, false},
		{"too big", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push"}, strings.Repeat("x", maxHookBody+1), 413, false},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("POST", srv.URL+tt.path, bytes.NewBufferString(tt.body))
		for k, v := range tt.headers {
			r.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		if got := woken(); got != tt.wakes {
			t.Errorf("%s: woke the hub %v, want %v", tt.name, got, tt.wakes)
		}
	}
	if resp, _ := http.Get(srv.URL + "/hooks/gitea"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET on a hook: %d", resp.StatusCode)
	}
	// Without a secret, webhooks are off: nothing is accepted.
	off := httptest.NewServer((&Hub{cfg: Config{Store: h.cfg.Store}, wake: make(chan struct{}, 1)}).routes())
	defer off.Close()
	r, _ := http.NewRequest("POST", off.URL+"/hooks/gitea", strings.NewReader(giteaPush))
	r.Header.Set("X-Gitea-Event", "push")
	r.Header.Set("X-Gitea-Signature", sign("", giteaPush))
	if resp, _ := http.DefaultClient.Do(r); resp.StatusCode != http.StatusNotFound {
		t.Errorf("webhooks without a secret: %d", resp.StatusCode)
	}
}
