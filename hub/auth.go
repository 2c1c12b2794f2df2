package hub

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/hub/tokens"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// ErrOpenAPI is a JSON API that would listen beyond loopback with no token
// to ask for, and without --insecure.
var ErrOpenAPI = errors.New("the JSON API would be open to the network")

// TokensFile is where the hub of the clone s keeps its API tokens' hashes
// (see package tokens for why there, not in meta.yaml).
func TokensFile(s *store.Store) string {
	return filepath.Join(s.MetaDir(), "tokens.json")
}

// openAPI reads the API's tokens and TLS files, and refuses an API that
// would listen beyond loopback with no token unless Insecure: anyone who
// reached it would read the log.
func (h *Hub) openAPI() error {
	path := h.cfg.TokensFile
	if path == "" {
		path = TokensFile(h.cfg.Store)
	}
	checker, err := tokens.NewChecker(path)
	if err != nil {
		return err
	}
	h.auth = &auth{tokens: checker, required: !h.cfg.Insecure && !loopback(h.cfg.HTTPListen)}
	if n, err := checker.Count(); err != nil {
		return err
	} else if n == 0 && h.auth.required {
		return fmt.Errorf("%w: --listen %s reaches beyond this host and the hub has no API token, so anyone who reaches it could read the log; create one with `meta token create NAME` (clients send it as Authorization: Bearer TOKEN), or pass --insecure to serve the API without tokens", ErrOpenAPI, h.cfg.HTTPListen)
	}
	h.tls, err = loadTLS(h.cfg.TLSCert, h.cfg.TLSKey)
	return err
}

// auth asks every request for one of the hub's tokens, as
// `Authorization: Bearer TOKEN`, whenever the tokens file holds any; with
// required (an API beyond loopback), also when it holds none, so that
// removing the last token closes the API rather than opening it. Every
// handler that shows the log (the JSON API, a page later) goes through
// wrap; the push-webhook receivers have their HMAC instead.
type auth struct {
	tokens   *tokens.Checker
	required bool
}

// wrap serves next to requests with a token the file holds now; others get
// 401 with WWW-Authenticate and a JSON error, and a tokens file that cannot
// be read refuses every request (500) until it can. The hub logs nothing
// of a refused token.
func (a *auth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, problem := bearer(r.Header)
		_, err := a.tokens.Check(token)
		switch {
		case err == nil, errors.Is(err, tokens.ErrNone) && !a.required:
			next.ServeHTTP(w, r)
			return
		case errors.Is(err, tokens.ErrFile):
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the hub cannot read its API tokens; it refuses every request until it can"})
			return
		}
		challenge := `Bearer realm="meta"`
		if problem == "" {
			problem = "token not accepted (wrong, or removed)"
		}
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": problem})
	})
}

// maxTokenHeader bounds the Authorization header looked at: a token is
// well under it, and nothing longer is hashed.
const maxTokenHeader = 256

// bearer is the token of an `Authorization: Bearer TOKEN` header (RFC
// 6750; the scheme's case does not matter), or what is wrong with the
// header. Nothing of the header is echoed back.
func bearer(h http.Header) (token, problem string) {
	values := h.Values("Authorization")
	switch {
	case len(values) == 0 || values[0] == "":
		return "", "this API needs a token: send Authorization: Bearer TOKEN (`meta token create NAME` on the hub makes one)"
	case len(values) > 1:
		return "", "more than one Authorization header"
	case len(values[0]) > maxTokenHeader:
		return "", "Authorization header too long for a token"
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	token = strings.TrimLeft(token, " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsFunc(token, func(c rune) bool { return c <= ' ' || c >= 0x7f }) {
		return "", "malformed Authorization header: want Bearer TOKEN"
	}
	return token, ""
}

// loopback says whether addr (host:port, checked) listens only on this
// host: 127.0.0.0/8, ::1, or a name that resolves to one. An empty host
// is every interface.
func loopback(addr string) bool {
	a, err := net.ResolveTCPAddr("tcp", addr)
	return err == nil && a.IP != nil && a.IP.IsLoopback()
}
