package hub

import (
	"bytes"
	"cmp"
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
	"sync"
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

// Outgoing webhooks are fed from git, inside the hub: each cycle hands
// every endpoint the events CatchUp read from git through the store (the
// store reads its own for an endpoint that is behind), never anything that
// came over NATS. Not from a JetStream consumer, as they once were: a
// consumer delivers whatever reaches its stream, and the hub cannot make
// sure that only it writes to a stream of an external cluster (a
// hub-private stream included), while git read through the store is the
// one source it checks.
//
// Durability across restarts is each endpoint's cursor in the hub's
// bucket (cursorKey): the commit up to which everything was delivered, and
// the ids of the events after it delivered so far. A restarted hub reads
// what the endpoint has not taken from git. Followers' credentials cannot
// write that bucket; whoever could (an external cluster that lets them)
// could make an endpoint miss or repeat events, never receive one that is
// not in git.

// cursor is how far an endpoint got.
type cursor struct {
	Commit string   `json:"commit"`
	Done   []string `json:"done,omitempty"`
}

// batch is the events between two commits, to deliver in this order.
type batch struct {
	events []*metav1.Event
	tip    string
}

// outbox is one endpoint: the batch it delivers, and how far it got. The
// cycle hands it a batch only when it is idle (not busy), so its cursor is
// the cycle's to read while idle and the delivery's to move while busy.
type outbox struct {
	w       Webhook
	key     []byte
	batches chan batch
	mu      sync.Mutex
	cur     cursor
	loaded  bool // cur read from the bucket (or found missing)
	// rev is the revision of the cursor in the bucket as this hub last
	// read or wrote it (0: none there): every write is made against it,
	// so that a hub that stalled while the other took over cannot put an
	// older cursor over the newer one (errFenced).
	rev     uint64
	fresh   bool // no cursor yet: it starts with what comes next
	busy    bool
	stopped bool // disabled
}

// openOutboxes makes an outbox per webhook that may deliver, and forgets
// the JetStream consumers through which older hubs fed them.
func (h *Hub) openOutboxes(ctx context.Context) {
	js, _ := jetstream.New(h.nc)
	for _, w := range h.cfg.Webhooks {
		key, err := ParseSecret(w.Secret)
		if err != nil {
			h.cfg.Logf("webhook %s: %v; not delivering", w.Name, err)
			continue
		}
		if h.webhookDisabled(ctx, w.Name) {
			h.cfg.Logf("webhook %s: disabled (it answered 410 Gone); remove it from meta.yaml or clear %s in the %s bucket", w.Name, disabledKey(w.Name), stateBucket)
			continue
		}
		if js != nil {
			js.DeleteConsumer(ctx, notify.StreamName, "webhook-"+w.Name)
		}
		h.outboxes = append(h.outboxes, &outbox{w: w, key: key, batches: make(chan batch, 1)})
	}
}

func cursorKey(name string) string { return "webhook." + name + ".cursor" }

// load reads o's cursor from the bucket, once.
func (h *Hub) load(ctx context.Context, o *outbox) error {
	if o.loaded {
		return nil
	}
	e, err := h.kv.Get(ctx, cursorKey(o.w.Name))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		o.fresh, o.rev = true, 0
	case err != nil:
		return err
	default:
		o.rev = e.Revision()
		if err := json.Unmarshal(e.Value(), &o.cur); err != nil || o.cur.Commit == "" {
			return fmt.Errorf("%s in the %s bucket is not a cursor meta wrote; delete it to start the endpoint anew", cursorKey(o.w.Name), stateBucket)
		}
	}
	o.loaded = true
	return nil
}

// errFenced means the cursor in the bucket is not the one this hub last
// read or wrote: the other hub moved it (it took the lease while this one
// stalled), or this hub's own write went through without its answer.
// Either way the hub reads it again before it delivers more.
var errFenced = errors.New("another hub moved the cursor")

// put writes c as o's cursor, against the revision this hub last read or
// wrote (errFenced when the bucket has another). Not tied to the hub's
// context: a delivery made while the hub stops is remembered.
func (h *Hub) put(o *outbox, c cursor) error {
	data, _ := json.Marshal(c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rev uint64
	var err error
	if o.rev == 0 {
		rev, err = h.kv.Create(ctx, cursorKey(o.w.Name), data)
	} else {
		rev, err = h.kv.Update(ctx, cursorKey(o.w.Name), data, o.rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("%w: %w", errFenced, err)
	}
	if err == nil {
		o.rev = rev
	}
	return err
}

// feed hands each idle endpoint the events git has that it has not taken:
// events, read from git from the commit from up to tip, when its cursor is
// from, else what the store reads since its cursor. An endpoint new to the
// hub starts at from (the commit the hub had published up to), or at tip
// on a hub's first run: it gets what happens from then on, not the log's
// history.
func (h *Hub) feed(ctx context.Context, from string, events []*metav1.Event, tip string) {
	leading := h.delivering()
	for _, o := range h.outboxes {
		o.mu.Lock()
		if o.busy || o.stopped {
			o.mu.Unlock()
			continue
		}
		if !leading {
			// The other hub delivers and moves the cursor: read it
			// again once this one takes over.
			o.loaded = false
			o.mu.Unlock()
			continue
		}
		if err := h.load(ctx, o); err != nil {
			o.mu.Unlock()
			h.cfg.Logf("webhook %s: %v", o.w.Name, err)
			continue
		}
		if o.fresh {
			o.cur, o.fresh = cursor{Commit: cmp.Or(from, tip)}, false
			if err := h.put(o, o.cur); errors.Is(err, errFenced) {
				o.loaded = false // the other hub wrote one meanwhile: read it
				o.mu.Unlock()
				continue
			} else if err != nil {
				h.cfg.Logf("webhook %s: remember how far it got: %v", o.w.Name, err)
			}
		}
		if o.cur.Commit == tip {
			o.mu.Unlock()
			continue
		}
		evs := events
		if o.cur.Commit != from {
			var err error
			if evs, _, _, err = h.cfg.Store.Since(ctx, o.cur.Commit); err != nil {
				o.mu.Unlock()
				h.cfg.Logf("webhook %s: read the events since commit %s: %v", o.w.Name, o.cur.Commit, err)
				continue
			}
		}
		o.busy = true
		o.mu.Unlock()
		o.batches <- batch{events: evs, tip: tip}
	}
}

// deliver sends each batch the cycle hands o to its endpoint until ctx
// ends or the endpoint is disabled: one event at a time, in order. 2xx is
// delivered; 410 disables the endpoint; anything else is retried later
// (after Retry-After when the endpoint gives one, else with exponential
// backoff and jitter), and the events behind it wait. A batch is given up
// half done when the other hub holds the webhooks lease (leader.go): that
// hub goes on from the saved cursor.
func (h *Hub) deliver(ctx context.Context, o *outbox) {
	client := &http.Client{Timeout: deliveryTimeout}
	for {
		var b batch
		select {
		case <-ctx.Done():
			return
		case b = <-o.batches:
		}
		o.mu.Lock()
		done := make(map[string]bool, len(o.cur.Done))
		for _, id := range o.cur.Done {
			done[id] = true
		}
		o.mu.Unlock()
		yielded := false
		for _, ev := range b.events {
			if done[ev.GetId()] {
				continue // delivered before the hub restarted
			}
			sent := h.deliverOne(ctx, o, client, ev)
			if sent == taken {
				o.mu.Lock()
				o.cur.Done = append(o.cur.Done, ev.GetId())
				c := o.cur
				o.mu.Unlock()
				sent = h.saveUntil(ctx, o, c)
			}
			if sent == stop {
				return
			}
			if sent == yield {
				yielded = true
				break
			}
		}
		if !yielded {
			switch h.saveUntil(ctx, o, cursor{Commit: b.tip}) {
			case stop:
				return
			case yield:
				yielded = true
			}
		}
		o.mu.Lock()
		if yielded {
			// The other hub took over: it goes on from the cursor saved
			// after the last event this one delivered.
			o.busy, o.loaded = false, false
			o.mu.Unlock()
			continue
		}
		o.cur, o.busy = cursor{Commit: b.tip}, false
		o.mu.Unlock()
	}
}

// saveRetry is the pause between two tries to save a cursor.
const saveRetry = 250 * time.Millisecond

// saveUntil remembers c as how far o got, trying again while NATS cannot
// take it (a cluster electing a new leader for the bucket), and the next
// event waits: a delivery whose cursor is not saved is made again by
// whichever hub reads the cursor next, this one included once it yields
// and takes the lease back. Said once per failing streak.
func (h *Hub) saveUntil(ctx context.Context, o *outbox, c cursor) sent {
	for try := 0; ; try++ {
		err := h.put(o, c)
		if err == nil {
			return taken
		}
		if errors.Is(err, errFenced) {
			// Not this hub's to move any more (or its own last write
			// went through unanswered): it reads the cursor again once
			// it holds the lease, and goes on from there.
			h.cfg.Logf("webhook %s: %v; this hub reads it again before it delivers more", o.w.Name, err)
			return yield
		}
		if try == 0 {
			h.cfg.Logf("webhook %s: remember how far it got: %v; trying again", o.w.Name, err)
		}
		if !h.delivering() {
			return yield
		}
		select {
		case <-ctx.Done():
			return stop
		case <-time.After(saveRetry):
		}
	}
}

// delivering says whether this hub delivers the webhooks: it holds the
// lease (leader.go), or has no leader (a Hub a test made without Run).
func (h *Hub) delivering() bool { return h.leader == nil || h.leader.holds() }

// sent is what became of one event's delivery.
type sent int

const (
	taken sent = iota // the endpoint took it, or it can never be delivered
	stop              // the hub stops, or the endpoint is gone
	yield             // the other hub delivers from now on
)

// deliverOne tries ev until the endpoint takes it (or it can never be
// delivered), ctx ends, the endpoint is gone, or the other hub holds the
// lease before an attempt. The POST is not tied to ctx: an in-flight
// delivery finishes, and is remembered, even while the hub stops.
func (h *Hub) deliverOne(ctx context.Context, o *outbox, client *http.Client, ev *metav1.Event) sent {
	for attempt := uint64(1); ; attempt++ {
		if !h.delivering() {
			return yield
		}
		result, after := h.post(client, o.w, o.key, ev)
		if result == delivered {
			h.delivered.Add(1)
		} else {
			h.failed.Add(1)
		}
		switch result {
		case delivered, undeliverable:
			return taken
		case gone:
			h.disableWebhook(o.w.Name)
			o.mu.Lock()
			o.stopped = true
			o.mu.Unlock()
			return stop
		}
		if after == 0 {
			after = h.retryDelay(attempt)
		}
		select {
		case <-ctx.Done():
			return stop
		case <-time.After(after):
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
