package hub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Webhook is an endpoint that receives every new event as JSON, signed per
// the Standard Webhooks spec (https://www.standardwebhooks.com).
type Webhook struct {
	Name string
	URL  string
	// Secret is the signing key: "whsec_" and base64, as the spec has it.
	Secret string
}

// ParseSecret reads a Standard Webhooks secret into its key bytes.
func ParseSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New(`a webhook secret starts with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 24 {
		return nil, errors.New("a webhook secret is whsec_ and at least 24 bytes in base64")
	}
	return key, nil
}

// Sign is the webhook-signature header value for a delivery.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Delivery limits: how long one POST may take, and the longest pause
// between retries.
const (
	deliveryTimeout = 15 * time.Second
	maxRetryDelay   = time.Hour
)

// deliver sends events to one endpoint until ctx ends: one at a time, in
// stream order, from a durable consumer, so a restart loses no pending
// delivery. 2xx is delivered; 410 disables the endpoint; anything else is
// retried later (after Retry-After when the endpoint gives one, else with
// exponential backoff and jitter).
func (h *Hub) deliver(ctx context.Context, w Webhook) {
	key, err := ParseSecret(w.Secret)
	if err != nil {
		h.cfg.Logf("webhook %s: %v; not delivering", w.Name, err)
		return
	}
	if h.webhookDisabled(ctx, w.Name) {
		h.cfg.Logf("webhook %s: disabled (it answered 410 Gone); remove it from meta.yaml or clear %s in the %s bucket", w.Name, disabledKey(w.Name), stateBucket)
		return
	}
	js, err := jetstream.New(h.nc)
	if err != nil {
		h.cfg.Logf("webhook %s: %v", w.Name, err)
		return
	}
	c, err := notify.NewConsumer(ctx, js, notify.ConsumerConfig{
		Durable:     "webhook-" + w.Name,
		Description: "meta webhook " + w.URL,
		// An endpoint gets what happens once it is configured, not the
		// stream's year of history.
		New:     true,
		AckWait: 2 * deliveryTimeout,
	})
	if err != nil {
		h.cfg.Logf("webhook %s: %v", w.Name, err)
		return
	}
	client := &http.Client{Timeout: deliveryTimeout}
	// The POST is not tied to ctx: an in-flight delivery finishes, and is
	// acknowledged, even while the hub stops.
	handle := func(ev *metav1.Event, d notify.Delivery) notify.Verdict {
		result, after := h.post(client, w, key, ev)
		if result == delivered {
			h.delivered.Add(1)
		} else {
			h.failed.Add(1)
		}
		switch result {
		case delivered:
			return notify.Ack
		case undeliverable:
			return notify.Drop
		case gone:
			h.disableWebhook(w.Name)
			return notify.Stop
		default:
			if after == 0 {
				after = h.retryDelay(d.Attempt)
			}
			return notify.RetryAfter(after)
		}
	}
	for ctx.Err() == nil {
		err := c.Consume(ctx, handle)
		if err == nil {
			return // ctx ended, or the endpoint is gone
		}
		// NATS away, most likely: the consumer is durable, so carry on
		// with it once NATS answers again.
		h.cfg.Logf("webhook %s: %v", w.Name, err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

type outcome int

const (
	delivered     outcome = iota
	undeliverable         // never deliverable: dropped, not retried
	gone                  // 410: the endpoint is disabled
	retry                 // after the returned delay, or a backoff when zero
)

// post makes one delivery attempt.
func (h *Hub) post(client *http.Client, w Webhook, key []byte, ev *metav1.Event) (outcome, time.Duration) {
	body, err := json.Marshal(record.ViewOf(ev))
	if err != nil {
		return undeliverable, 0
	}
	now := time.Now().Unix()
	req, err := http.NewRequest(http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return retry, 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", ev.GetId())
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now, 10))
	req.Header.Set("webhook-signature", Sign(key, ev.GetId(), now, body))
	resp, err := client.Do(req)
	if err != nil {
		h.cfg.Logf("webhook %s: event %s: %v", w.Name, ev.GetId(), err)
		return retry, 0
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return delivered, 0
	case resp.StatusCode == http.StatusGone:
		h.cfg.Logf("webhook %s answered 410 Gone: disabled", w.Name)
		return gone, 0
	}
	h.cfg.Logf("webhook %s: event %s: %s", w.Name, ev.GetId(), resp.Status)
	after, _ := parseRetryAfter(resp.Header.Get("Retry-After"))
	return retry, after
}

// parseRetryAfter reads seconds or an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, maxRetryDelay), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), maxRetryDelay), true
	}
	return 0, false
}

// retryDelay grows with each attempt (1 for the first delivery), capped,
// with full jitter.
func (h *Hub) retryDelay(attempt uint64) time.Duration {
	ceiling := min(h.retryBase<<min(attempt, 12), maxRetryDelay)
	return time.Duration(rand.Int64N(int64(ceiling))) + h.retryBase/10
}

func disabledKey(name string) string { return "webhook." + name + ".disabled" }

func (h *Hub) webhookDisabled(ctx context.Context, name string) bool {
	_, err := h.kv.Get(ctx, disabledKey(name))
	return err == nil
}

func (h *Hub) disableWebhook(name string) {
	h.kv.PutString(context.Background(), disabledKey(name), time.Now().UTC().Format(time.RFC3339))
}
