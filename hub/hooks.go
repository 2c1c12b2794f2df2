package hub

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// maxHookBody bounds a webhook's body: forges send a few kilobytes.
const maxHookBody = 1 << 20

// forge says how one forge signs and names its webhooks.
type forge struct {
	signature []string // headers that may carry the hex HMAC, first found wins
	prefix    string   // before the hex, e.g. "sha256="
	event     string   // header naming the event
	delivery  string   // header with the delivery id
	// formSignsPayload: in a form delivery the HMAC covers the payload
	// field's JSON (Gitea, Forgejo), not the body as sent (GitHub).
	formSignsPayload bool
}

var forges = map[string]forge{
	"gitea":   {signature: []string{"X-Gitea-Signature"}, event: "X-Gitea-Event", delivery: "X-Gitea-Delivery", formSignsPayload: true},
	"forgejo": {signature: []string{"X-Forgejo-Signature", "X-Gitea-Signature"}, event: "X-Forgejo-Event", delivery: "X-Forgejo-Delivery", formSignsPayload: true},
	"github":  {signature: []string{"X-Hub-Signature-256"}, prefix: "sha256=", event: "X-GitHub-Event", delivery: "X-GitHub-Delivery"},
}

// hooks receives push webhooks: a valid one wakes the hub, which fetches
// and publishes what git has new (the payload's commit list is only a hint,
// so it is not trusted for anything).
type hooks struct {
	secret []byte
	wake   func()
	mu     sync.Mutex
	seen   map[string]bool // delivery ids, to acknowledge replays and do nothing
	order  []string
}

// maxSeen bounds how many delivery ids are remembered.
const maxSeen = 10000

func (k *hooks) handle(name string) http.HandlerFunc {
	f := forges[name]
	return func(w http.ResponseWriter, r *http.Request) {
		if len(k.secret) == 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "webhooks are off: start meta serve with --webhook-secret-file or META_WEBHOOK_SECRET"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body larger than 1 MiB"})
				return
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "cannot read body"})
			return
		}
		// A form (GitHub's default content type, an option in Gitea and
		// Forgejo) carries the JSON in its payload field. GitHub signs the
		// form as sent, so it is checked before it is parsed; Gitea and
		// Forgejo sign the JSON, which must be taken out first.
		payload, formErr := body, error(nil)
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
			payload, formErr = formPayload(body)
		}
		if formErr != nil && f.formSignsPayload {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": formErr.Error()})
			return
		}
		signedOver := body
		if f.formSignsPayload {
			signedOver = payload
		}
		if !k.signed(f, r.Header, signedOver) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong signature"})
			return
		}
		if formErr != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": formErr.Error()})
			return
		}
		event := r.Header.Get(f.event)
		if event == "ping" {
			writeJSON(w, http.StatusOK, map[string]string{"status": "pong"})
			return
		}
		if event != "push" {
			writeJSON(w, http.StatusAccepted, map[string]string{"status": "ignored: not a push"})
			return
		}
		var push struct {
			Ref   string `json:"ref"`
			After string `json:"after"`
		}
		if err := json.Unmarshal(payload, &push); err != nil || push.Ref == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "not a push payload"})
			return
		}
		if id := r.Header.Get(f.delivery); id != "" && k.replayed(id) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate delivery, ignored"})
			return
		}
		k.wake()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "syncing"})
	}
}

// formPayload is the payload field of a form-encoded delivery.
func formPayload(body []byte) ([]byte, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("form body is not valid application/x-www-form-urlencoded")
	}
	if p := form["payload"]; len(p) == 1 {
		return []byte(p[0]), nil
	}
	return nil, errors.New("a form delivery carries its JSON in exactly one payload field")
}

// signed checks the body's HMAC-SHA256 in constant time.
func (k *hooks) signed(f forge, h http.Header, body []byte) bool {
	var got string
	for _, name := range f.signature {
		if got = h.Get(name); got != "" {
			break
		}
	}
	got, ok := strings.CutPrefix(got, f.prefix)
	if !ok || got == "" {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, k.secret)
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}

// replayed records a delivery id and says whether it was seen before.
func (k *hooks) replayed(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen[id] {
		return true
	}
	if k.seen == nil {
		k.seen = map[string]bool{}
	}
	k.seen[id] = true
	k.order = append(k.order, id)
	if len(k.order) > maxSeen {
		delete(k.seen, k.order[0])
		k.order = k.order[1:]
	}
	return false
}
