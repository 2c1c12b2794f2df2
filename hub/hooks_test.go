package hub

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// formBody is a payload as forges send it with the content type
// application/x-www-form-urlencoded: the JSON in the payload field.
func formBody(payload string) string { return url.Values{"payload": {payload}}.Encode() }

// GitHub's default content type is a form: it signs the raw form bytes.
// Gitea and Forgejo send the same form but sign the JSON inside it. Each
// is accepted as its forge sends it, and only so.
func TestWebhooksAsForms(t *testing.T) {
	const secret = "whs3cret"
	const formType = "application/x-www-form-urlencoded"
	h := &Hub{cfg: Config{Store: newLog(t), WebhookSecret: []byte(secret)}, wake: make(chan struct{}, 1)}
	srv := httptest.NewServer(h.routes())
	defer srv.Close()
	gh, gt := formBody(githubPush), formBody(giteaPush)
	tests := []struct {
		name        string
		path        string
		contentType string
		headers     map[string]string
		body        string
		status      int
		wakes       bool
	}{
		{"github form push", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "f1", "X-Hub-Signature-256": "sha256=" + sign(secret, gh)}, gh, 202, true},
		{"github form replayed", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "f1", "X-Hub-Signature-256": "sha256=" + sign(secret, gh)}, gh, 200, false},
		{"github form with charset", "/hooks/github", formType + "; charset=utf-8", map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "f2", "X-Hub-Signature-256": "sha256=" + sign(secret, gh)}, gh, 202, true},
		{"github json push, content type said", "/hooks/github", "application/json", map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "f3", "X-Hub-Signature-256": "sha256=" + sign(secret, githubPush)}, githubPush, 202, true},
		{"github form ping", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + sign(secret, formBody(`{"zen":"hi"}`))}, formBody(`{"zen":"hi"}`), 200, false},
		{"github form signed over the JSON, not the body", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "f4", "X-Hub-Signature-256": "sha256=" + sign(secret, githubPush)}, gh, 401, false},
		{"github form, wrong secret", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "f5", "X-Hub-Signature-256": "sha256=" + sign("guess", gh)}, gh, 401, false},
		{"github form, tampered", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "f6", "X-Hub-Signature-256": "sha256=" + sign(secret, gh)}, formBody(strings.Replace(githubPush, "main", "evil", 1)), 401, false},
		{"github form without payload", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(secret, "other=1")}, "other=1", 400, false},
		{"github form, payload not JSON", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(secret, "payload=garbage")}, "payload=garbage", 400, false},
		{"github form, payload twice", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(secret, gh+"&"+gh)}, gh + "&" + gh, 400, false},
		{"github form, bad escape", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(secret, "payload=%zz")}, "payload=%zz", 400, false},
		{"github form sent as json", "/hooks/github", "application/json", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(secret, gh)}, gh, 400, false},
		{"github form too big", "/hooks/github", formType, map[string]string{"X-GitHub-Event": "push"}, "payload=" + strings.Repeat("x", maxHookBody), 413, false},
		{"gitea form push", "/hooks/gitea", formType, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": "f7", "X-Gitea-Signature": sign(secret, giteaPush)}, gt, 202, true},
		{"gitea form signed over the body", "/hooks/gitea", formType, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": "f8", "X-Gitea-Signature": sign(secret, gt)}, gt, 401, false},
		{"forgejo form push", "/hooks/forgejo", formType, map[string]string{"X-Forgejo-Event": "push", "X-Forgejo-Delivery": "f9", "X-Forgejo-Signature": sign(secret, giteaPush)}, gt, 202, true},
		{"forgejo form without payload", "/hooks/forgejo", formType, map[string]string{"X-Forgejo-Event": "push"}, "other=1", 400, false},
		{"forgejo form, bad escape", "/hooks/forgejo", formType, map[string]string{"X-Forgejo-Event": "push"}, "payload=%zz", 400, false},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("POST", srv.URL+tt.path, strings.NewReader(tt.body))
		r.Header.Set("Content-Type", tt.contentType)
		for k, v := range tt.headers {
			r.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		var answer map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || (answer["error"] == "" && answer["status"] == "") {
			t.Errorf("%s: answer %v, %v", tt.name, answer, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d (%v), want %d", tt.name, resp.StatusCode, answer, tt.status)
		}
		select {
		case <-h.wake:
			if !tt.wakes {
				t.Errorf("%s: woke the hub", tt.name)
			}
		default:
			if tt.wakes {
				t.Errorf("%s: did not wake the hub", tt.name)
			}
		}
	}
}

// Whatever the hub's API does not serve is a JSON error, as every API
// error is: 404 for a path it does not know, 405 (with Allow) for a method
// a path does not take. Paths outside the API are the page's, and its
// errors are pages (TestPageRoutes).
func TestUnknownRoutesAnswerJSON(t *testing.T) {
	h := &Hub{cfg: Config{Store: newLog(t), WebhookSecret: []byte("s")}, wake: make(chan struct{}, 1)}
	hub := httptest.NewServer(h.routes())
	defer hub.Close()
	api := httptest.NewServer(NewHandler(h.cfg.Store))
	defer api.Close()
	tests := []struct {
		srv    *httptest.Server
		method string
		path   string
		status int
		allow  string
	}{
		{hub, "GET", "/v1/nope", 404, ""},
		{hub, "GET", "/v1", 404, ""}, // redirected to /v1/, which is nothing
		{hub, "GET", "/v1/apps/a.example.com/log/more", 404, ""},
		{hub, "POST", "/hooks/gitlab", 404, ""},
		{hub, "GET", "/hooks/gitea", 405, "POST"},
		{hub, "DELETE", "/healthz", 405, "GET, HEAD"},
		{hub, "POST", "/v1/apps", 405, "GET, HEAD"},
		{hub, "GET", "/logout", 405, "POST"},
		{api, "GET", "/", 404, ""},
		{api, "PUT", "/v1/quarantine", 405, "GET, HEAD"},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(tt.method, tt.srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]string
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		what := tt.method + " " + tt.path
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" || err != nil || e["error"] == "" {
			t.Errorf("%s: %d %q %v %v, want %d, application/json and an error", what, resp.StatusCode, resp.Header.Get("Content-Type"), e, err, tt.status)
		}
		if got := resp.Header.Get("Allow"); got != tt.allow {
			t.Errorf("%s: Allow %q, want %q", what, got, tt.allow)
		}
	}
}
