package hub

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/hub/tokens"
)

// answer is one HTTP answer as the auth tests look at it.
type answer struct {
	status    int
	challenge string // WWW-Authenticate
	body      string
	json      map[string]any
}

func ask(t *testing.T, c *http.Client, method, url string, header http.Header) answer {
	t.Helper()
	r, _ := http.NewRequest(method, url, nil)
	maps := r.Header
	for k, vs := range header {
		maps[k] = vs
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), body: string(body)}
	if resp.Header.Get("Content-Type") == "application/json" {
		json.Unmarshal(body, &a.json)
	}
	return a
}

func bearerHeader(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// refused checks a 401 as every refusal is: a JSON error, a Bearer
// challenge, and nothing of what was sent.
func refused(t *testing.T, what string, a answer, sent string) {
	t.Helper()
	if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.challenge, `Bearer realm="meta"`) || a.json["error"] == nil {
		t.Errorf("%s: %d %q %q, want 401 with a Bearer challenge and a JSON error", what, a.status, a.challenge, a.body)
	}
	if len(sent) > 8 && strings.Contains(a.body, sent) {
		t.Errorf("%s: the answer echoes what was sent: %q", what, a.body)
	}
	if strings.Contains(a.body, "a.example.com") {
		t.Errorf("%s: the answer shows the log: %q", what, a.body)
	}
}

// On a running hub: no token, a wrong one and a removed one are refused,
// the right one is served; tokens made and removed by `meta token` while
// it runs count from the next request on. Health stays open.
func TestAPITokens(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, 1, "a.example.com", "1.0.0")
	path := filepath.Join(t.TempDir(), "tokens.json")
	h := serveHub(t, Config{Store: s, TokensFile: path})
	base := "http://" + h.HTTPAddr()
	c := http.DefaultClient

	if a := ask(t, c, "GET", base+"/v1/apps", nil); a.status != 200 {
		t.Fatalf("loopback, no token yet: %d %s, want 200", a.status, a.body)
	}
	ci, err := tokens.Create(path, "ci", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := tokens.Create(path, "other", time.Now())
	a := ask(t, c, "GET", base+"/v1/apps", nil)
	refused(t, "no token", a, "")
	if a.challenge != `Bearer realm="meta"` || !strings.Contains(a.json["error"].(string), "meta token create NAME") {
		t.Errorf("no token: %q %v: want a bare challenge and the way to get one", a.challenge, a.json)
	}
	wrong := tokens.Prefix + strings.Repeat("a", 52)
	a = ask(t, c, "GET", base+"/v1/apps/a.example.com", bearerHeader(wrong))
	refused(t, "wrong token", a, wrong)
	if a.challenge != `Bearer realm="meta", error="invalid_token"` {
		t.Errorf("wrong token: challenge %q", a.challenge)
	}
	for _, path := range []string{"/v1/apps", "/v1/apps/a.example.com", "/v1/apps/a.example.com/log", "/v1/quarantine"} {
		if a := ask(t, c, "GET", base+path, bearerHeader(ci)); a.status != 200 {
			t.Errorf("right token, %s: %d %s", path, a.status, a.body)
		}
	}
	refused(t, "a path that does not exist, no token", ask(t, c, "GET", base+"/v1/nope", nil), "")
	if a := ask(t, c, "GET", base+"/healthz", nil); a.status != 200 {
		t.Errorf("healthz without a token: %d, want 200 (open)", a.status)
	}

	if err := tokens.Remove(path, "ci"); err != nil {
		t.Fatal(err)
	}
	refused(t, "removed token", ask(t, c, "GET", base+"/v1/apps", bearerHeader(ci)), ci)
	if a := ask(t, c, "GET", base+"/v1/apps", bearerHeader(other)); a.status != 200 {
		t.Errorf("remaining token: %d %s", a.status, a.body)
	}
	// A tokens file that cannot be read refuses everyone until mended.
	good, _ := os.ReadFile(path)
	os.WriteFile(path, []byte("{"), 0o600)
	if a := ask(t, c, "GET", base+"/v1/apps", bearerHeader(other)); a.status != 500 || a.json["error"] == nil || strings.Contains(a.body, "a.example.com") {
		t.Errorf("broken tokens file: %d %q, want 500 and a JSON error", a.status, a.body)
	}
	if _, err := New(context.Background(), Config{Store: s, HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), TokensFile: path}); !errors.Is(err, tokens.ErrFile) {
		t.Errorf("a hub started on a broken tokens file: %v, want ErrFile", err)
	}
	os.WriteFile(path, good, 0o600)
	if a := ask(t, c, "GET", base+"/v1/apps", bearerHeader(other)); a.status != 200 {
		t.Errorf("tokens file mended: %d %s", a.status, a.body)
	}
	// On loopback the API is open again once no token is left.
	tokens.Remove(path, "other")
	if a := ask(t, c, "GET", base+"/v1/apps", nil); a.status != 200 {
		t.Errorf("loopback, last token removed: %d, want 200", a.status)
	}
}

// Authorization headers that are not `Bearer TOKEN` are refused, without
// echoing them, and without the server falling over.
func TestMalformedAuthorization(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, 1, "a.example.com", "1.0.0")
	path := filepath.Join(t.TempDir(), "tokens.json")
	tok, _ := tokens.Create(path, "ci", time.Now())
	h := serveHub(t, Config{Store: s, TokensFile: path})
	base := "http://" + h.HTTPAddr()
	for _, tt := range []struct {
		name   string
		values []string
		status int
	}{
		{"right, as a check", []string{"Bearer " + tok}, 200},
		{"scheme in lower case", []string{"bearer " + tok}, 200},
		{"two spaces", []string{"Bearer  " + tok}, 200},
		{"empty", []string{""}, 401},
		{"scheme only", []string{"Bearer"}, 401},
		{"scheme and space", []string{"Bearer "}, 401},
		{"no scheme", []string{tok}, 401},
		{"basic", []string{"Basic " + tok}, 401},
		{"token and more", []string{"Bearer " + tok + " x"}, 401},
		{"tab, not space", []string{"Bearer\t" + tok}, 401},
		{"twice, right then wrong", []string{"Bearer " + tok, "Bearer nope"}, 401},
		{"twice, both right", []string{"Bearer " + tok, "Bearer " + tok}, 401},
		{"long", []string{"Bearer " + strings.Repeat("a", 10000)}, 401},
		{"right plus a long tail", []string{"Bearer " + tok + strings.Repeat("a", 300)}, 401},
		{"non-ASCII", []string{"Bearer " + tok[:20] + "é" + tok[22:]}, 401},
		{"huge, past the header limit", []string{"Bearer " + strings.Repeat("a", 100<<10)}, http.StatusRequestHeaderFieldsTooLarge},
	} {
		a := ask(t, http.DefaultClient, "GET", base+"/v1/apps", http.Header{"Authorization": tt.values})
		switch {
		case a.status != tt.status:
			t.Errorf("%s: %d %q, want %d", tt.name, a.status, a.body, tt.status)
		case tt.status == 401:
			refused(t, tt.name, a, tt.values[0])
		}
	}
	// Control characters: net/http refuses the request before the hub
	// sees it; what is sent raw gets no log either way.
	for _, ctl := range []string{"\x00", "\x01", "\x1b[31m", "\x7f"} {
		conn, err := net.Dial("tcp", h.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET /v1/apps HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer %s%s\r\n\r\n", tok, ctl)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("control %q: %v", ctl, err)
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode == 200 || strings.Contains(string(body), "a.example.com") {
			t.Errorf("control %q: %d %q, want refused", ctl, resp.StatusCode, body)
		}
	}
}

// The push-webhook receivers take their forge's HMAC and no token: a
// signed push without a token is taken, a token does not stand in for the
// signature.
func TestWebhookReceiversIgnoreTokens(t *testing.T) {
	const secret = "whs3cret"
	s := newLog(t)
	tok, err := tokens.Create(TokensFile(s), "ci", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := &Hub{cfg: Config{Store: s, WebhookSecret: []byte(secret)}, wake: make(chan struct{}, 1)}
	srv := httptest.NewServer(h.routes())
	defer srv.Close()
	if a := ask(t, http.DefaultClient, "GET", srv.URL+"/v1/apps", nil); a.status != 401 {
		t.Fatalf("the API without a token: %d, want 401 (the test's premise)", a.status)
	}
	for _, tt := range []struct {
		name   string
		header http.Header
		status int
		wakes  bool
	}{
		{"signed, no token", http.Header{"X-Hub-Signature-256": {"sha256=" + sign(secret, githubPush)}}, 202, true},
		{"token, no signature", bearerHeader(tok), 401, false},
		{"token, wrong signature", http.Header{"Authorization": {"Bearer " + tok}, "X-Hub-Signature-256": {"sha256=" + sign("guess", githubPush)}}, 401, false},
		{"signed, wrong token", http.Header{"Authorization": {"Bearer nope"}, "X-Hub-Signature-256": {"sha256=" + sign(secret, githubPush)}}, 202, true},
	} {
		r, _ := http.NewRequest("POST", srv.URL+"/hooks/github", strings.NewReader(githubPush))
		r.Header = tt.header.Clone()
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-GitHub-Event", "push")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		woke := false
		select {
		case <-h.wake:
			woke = true
		default:
		}
		if resp.StatusCode != tt.status || woke != tt.wakes || resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: %d, woke %v, challenge %q; want %d, woke %v, no challenge", tt.name, resp.StatusCode, woke, resp.Header.Get("WWW-Authenticate"), tt.status, tt.wakes)
		}
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080":     true,
		"127.9.9.9:8080":     true,
		"localhost:8080":     true,
		"[::1]:8080":         true,
		":8080":              false,
		"0.0.0.0:8080":       false,
		"[::]:8080":          false,
		"10.0.0.1:8080":      false,
		"192.0.2.1:8080":     false,
		"[2001:db8::1]:8080": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// Beyond loopback without a token the hub refuses to start, naming the
// address and both ways out, before anything starts; --insecure serves it
// open; with a token it starts and asks for it, and keeps asking once the
// last token is removed instead of opening up.
func TestAPIBeyondLoopbackNeedsATokenOrInsecure(t *testing.T) {
	s := newLog(t)
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		data := filepath.Join(t.TempDir(), "nats")
		_, err := New(context.Background(), Config{Store: s, HTTPListen: addr, NATSListen: "127.0.0.1:0", DataDir: data, TokensFile: filepath.Join(t.TempDir(), "tokens.json")})
		if !errors.Is(err, ErrOpenAPI) || !strings.Contains(err.Error(), "--listen "+addr) || !strings.Contains(err.Error(), "meta token create NAME") || !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("%s without a token: %v; want ErrOpenAPI naming the address, meta token create NAME and --insecure", addr, err)
		}
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s refused, but NATS's data directory was made: %v", addr, err)
		}
	}
	start := func(cfg Config) *Hub {
		cfg.Store, cfg.HTTPListen, cfg.NATSListen, cfg.DataDir, cfg.Poll = s, "0.0.0.0:0", "127.0.0.1:0", t.TempDir(), time.Hour
		h, stop := runHub(t, cfg)
		t.Cleanup(stop)
		return h
	}
	local := func(h *Hub) string {
		_, port, _ := net.SplitHostPort(h.HTTPAddr())
		return "http://127.0.0.1:" + port
	}
	open := start(Config{Insecure: true, TokensFile: filepath.Join(t.TempDir(), "tokens.json")})
	if a := ask(t, http.DefaultClient, "GET", local(open)+"/v1/apps", nil); a.status != 200 {
		t.Errorf("--insecure: %d, want 200", a.status)
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	tok, _ := tokens.Create(path, "ci", time.Now())
	guarded := start(Config{TokensFile: path})
	refused(t, "beyond loopback, no token sent", ask(t, http.DefaultClient, "GET", local(guarded)+"/v1/apps", nil), "")
	if a := ask(t, http.DefaultClient, "GET", local(guarded)+"/v1/apps", bearerHeader(tok)); a.status != 200 {
		t.Errorf("beyond loopback, right token: %d", a.status)
	}
	tokens.Remove(path, "ci")
	refused(t, "beyond loopback, last token removed", ask(t, http.DefaultClient, "GET", local(guarded)+"/v1/apps", nil), "")
}

// selfSigned writes a certificate for 127.0.0.1 and its key, PEM, and
// returns their paths and the pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "meta hub test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o700)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// With --tls-cert and --tls-key the API is HTTPS (HTTP/2 where the client
// offers it), tokens as over HTTP; plain HTTP to its port gets nothing of
// the log.
func TestTLS(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, 1, "a.example.com", "1.0.0")
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	path := filepath.Join(t.TempDir(), "tokens.json")
	tok, _ := tokens.Create(path, "ci", time.Now())
	h := serveHub(t, Config{Store: s, TokensFile: path, TLSCert: certFile, TLSKey: keyFile})
	for _, h2 := range []bool{false, true} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}}
		r, _ := http.NewRequest("GET", "https://"+h.HTTPAddr()+"/v1/apps", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(r)
		if err != nil {
			t.Fatalf("https (h2 %v): %v", h2, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantProto := map[bool]int{false: 1, true: 2}[h2]
		if resp.StatusCode != 200 || resp.TLS == nil || resp.ProtoMajor != wantProto || !strings.Contains(string(body), "a.example.com") {
			t.Errorf("https (h2 %v): %d %s %s", h2, resp.StatusCode, resp.Proto, body)
		}
		refused(t, "https without a token", ask(t, c, "GET", "https://"+h.HTTPAddr()+"/v1/apps", nil), "")
	}
	// A client that does not trust the certificate does not get through.
	if _, err := http.Get("https://" + h.HTTPAddr() + "/healthz"); err == nil {
		t.Error("https with an untrusted certificate: no error")
	}
	a := ask(t, http.DefaultClient, "GET", "http://"+h.HTTPAddr()+"/v1/apps", bearerHeader(tok))
	if a.status != http.StatusBadRequest || strings.Contains(a.body, "a.example.com") {
		t.Errorf("plain HTTP to the TLS port: %d %q, want 400 and no log", a.status, a.body)
	}
}

// TLS files that cannot serve are refused before anything starts, naming
// the flag and the file.
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := selfSigned(t, filepath.Join(dir, "a"))
	otherCert, otherKey, _ := selfSigned(t, filepath.Join(dir, "b"))
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a PEM file\n"), 0o600)
	badBlock := filepath.Join(dir, "bad-block.pem")
	os.WriteFile(badBlock, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), 0o600)
	badKey := filepath.Join(dir, "bad-key.pem")
	os.WriteFile(badKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	for _, tt := range []struct {
		name, cert, key string
		want            []string
	}{
		{"cert alone", cert, "", []string{"--tls-cert and --tls-key go together"}},
		{"key alone", "", key, []string{"--tls-cert and --tls-key go together"}},
		{"cert missing", missing, key, []string{"--tls-cert", missing}},
		{"key missing", cert, missing, []string{"--tls-key", missing}},
		{"cert not PEM", garbage, key, []string{"--tls-cert " + garbage, "no PEM certificate"}},
		{"cert not a certificate", badBlock, key, []string{"--tls-cert " + badBlock}},
		{"key not PEM", cert, garbage, []string{"--tls-key " + garbage, "no PEM private key"}},
		{"key not a key", cert, badKey, []string{"--tls-key " + badKey}},
		{"swapped", key, cert, []string{"--tls-cert " + key}},
		{"key is a certificate", cert, otherCert, []string{"--tls-key " + otherCert, "swapped"}},
		{"another certificate's key", cert, otherKey, []string{"--tls-key " + otherKey, "is not the key of --tls-cert " + cert}},
	} {
		data := filepath.Join(t.TempDir(), "nats")
		_, err := New(context.Background(), Config{Store: newLog(t), HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0", DataDir: data, TLSCert: tt.cert, TLSKey: tt.key})
		if !errors.Is(err, ErrTLS) {
			t.Errorf("%s: %v, want ErrTLS", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tt.name, err, w)
			}
		}
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: refused, but NATS's data directory was made", tt.name)
		}
	}
}
