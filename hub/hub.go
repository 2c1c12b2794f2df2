// Package hub is `meta serve`: it keeps a clone of the log in sync, puts
// every event it finds in git on NATS (so events appended offline, or while
// NATS was down, still reach every follower), and serves the log as JSON
// over HTTP. By default it runs its own NATS server, so there is nothing to
// install; pointed at an external server or cluster it uses that instead.
//
// Followers believe only the log: the hub is the one publisher of events,
// and publishes only what it read from git through the store. Its NATS
// server lets in the hub and read-only followers (natsauth.go); an append
// nudges the hub to look (notify.SyncSubject) rather than publishing; and
// outgoing webhooks are fed from git, not from NATS (webhooks.go).
package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"

	"git.coopcloud.tech/coop-cloud/meta/hub/page"
	"git.coopcloud.tech/coop-cloud/meta/hub/tokens"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

// Defaults for Config.
const (
	DefaultHTTPListen = "127.0.0.1:8080"
	DefaultNATSListen = "127.0.0.1:4222"
	DefaultPoll       = 30 * time.Second
	// DefaultCheckpointEvery is how many commits the log may grow past
	// its published derived state before the hub publishes a new one.
	DefaultCheckpointEvery = 1000

	// A request (headers and body) must arrive within DefaultReadTimeout,
	// its answer be written within DefaultWriteTimeout (only the page's
	// live stream outlives it, with a deadline per event), and a
	// keep-alive connection wait at most DefaultIdleTimeout for its next
	// request. At most DefaultMaxConns are open at once.
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	DefaultIdleTimeout  = 60 * time.Second
	DefaultMaxConns     = 256
)

// Limits of the HTTP server that are not configurable: headers come
// within readHeaderTimeout (or the read timeout, if shorter) and are at
// most maxHeaderBytes; forges and API clients send far less.
const (
	readHeaderTimeout = 10 * time.Second
	maxHeaderBytes    = 64 << 10
)

// stateBucket is the JetStream key-value bucket where the hub remembers
// the last commit whose events it published.
const (
	stateBucket  = "META_HUB"
	publishedKey = "published"
)

// Config says what the hub serves and where.
type Config struct {
	Store *store.Store
	// NATSURL is an external NATS server or cluster; empty runs one inside
	// the hub, listening on NATSListen, with its data and the credential
	// files it makes (HubSeedFile, FollowerSeedFile) in DataDir.
	NATSURL    string
	NATSListen string
	DataDir    string
	// NATSOptions are the hub's credentials (and TLS) for an external
	// server; the embedded one is reached with the hub's own key.
	NATSOptions []nats.Option
	// NATSReplicas is how many servers of an external cluster keep the
	// events stream and the hub's and followers' buckets (0 is 1); more
	// than one needs NATSURL. Two hubs of one log may run at once against
	// such a cluster (see leader.go).
	NATSReplicas int
	// JSONBody publishes events' JSON view instead of protobuf.
	JSONBody bool
	// HTTPListen is the address of the JSON API.
	HTTPListen string
	// Poll is how often the hub syncs with the remote and publishes.
	Poll time.Duration
	// CheckpointEvery is how many commits the log may grow past its
	// published derived state (store.PublishDerived) before the hub
	// publishes a new one, for the first reads of new clones; zero takes
	// DefaultCheckpointEvery, less than zero publishes none.
	CheckpointEvery int
	// The HTTP server's limits; zero (or less) takes the Default one.
	HTTPReadTimeout  time.Duration
	HTTPWriteTimeout time.Duration
	HTTPIdleTimeout  time.Duration
	HTTPMaxConns     int
	// The API's tokens (auth.go): TokensFile holds their hashes (empty:
	// TokensFile(Store)); Insecure lets the API listen beyond loopback
	// with none; TLSCert and TLSKey, both or neither, serve it over HTTPS.
	TokensFile      string
	Insecure        bool
	TLSCert, TLSKey string
	// IdentityHeader names the header a reverse proxy in front of the
	// hub puts its signed-in user's name in (X-Forwarded-User,
	// Remote-User, ...): the page believes it, from TrustedProxies only
	// (none: loopback), instead of asking for a token. Empty: the page
	// asks for a token whenever the API does.
	IdentityHeader string
	TrustedProxies []netip.Prefix
	// WebhookSecret signs incoming push webhooks; empty turns them off.
	WebhookSecret []byte
	// Webhooks receive every new event.
	Webhooks []Webhook
	// Engines are the Docker Engines the hub observes (observe.go), each
	// followed on its own; none: it observes nothing. Actor is who the
	// observations are recorded as (the store's signer signs them).
	// ObserveInterval is how often it looks at every stack besides
	// following each Engine's events; ObserveWindow how long a service's
	// recovery must hold before it is recorded (smooth.go). Zero takes
	// the Default.
	Engines         []config.Engine
	Actor           *metav1.Actor
	ObserveInterval time.Duration
	ObserveWindow   time.Duration
	// Logf reports what the hub does; nil is quiet.
	Logf func(format string, args ...any)
	// leaseTTL is how long the webhooks lease outlives a hub that stopped
	// renewing it (leader.go); zero is hubLeaseTTL. Shorter in tests.
	leaseTTL time.Duration
}

// Hub is a running hub.
type Hub struct {
	cfg Config
	// checkpointAt is the log commit of the derived state this hub last
	// published, checkpointFailed the remote tip a checkpoint last failed
	// at (see checkpoint).
	checkpointAt, checkpointFailed string
	embedded                       *server.Server
	natsURL                        string
	// keys are the embedded server's users; nil for an external one.
	keys *natsKeys
	// natsOpts are how the hub connects to NATS.
	natsOpts []nats.Option
	pub      *notify.Publisher
	nc       *nats.Conn
	kv       jetstream.KeyValue
	// leases holds the webhooks lease; leader is this hub's hold on it,
	// nil while it has no webhooks to deliver.
	leases jetstream.KeyValue
	leader *leader
	// outboxes feed the webhooks, one per endpoint.
	outboxes []*outbox
	// unlockData releases the embedded NATS's data directory.
	unlockData func()
	listener   *connLimiter
	http       *http.Server
	auth       *auth
	// page is the web page at /, kept live by live.
	page *page.Page
	live *page.Live
	tls  *tls.Config // nil: plain HTTP
	wake chan struct{}
	// appends are the appends operators' meta handed over, waiting for
	// the group commit (group.go); grouped counts those it wrote.
	appends chan *pendingAppend
	grouped atomic.Int64
	// fresh says the hub itself committed events (observations): they
	// are published at once, with no sync and no wakeGap.
	fresh chan struct{}
	// wakeGap is the least time between two syncs that wakes asked for:
	// however many nudges and push webhooks come, the hub fetches at most
	// once per wakeGap for them.
	wakeGap time.Duration
	// retryBase is the first webhook retry's ceiling; it doubles per try.
	retryBase time.Duration
	// What Stats tells: since when Run runs, and its counts.
	started                      atomic.Value // time.Time
	published, delivered, failed atomic.Int64
	// cycles counts syncs, for the tests of wakes.
	cycles atomic.Int64
	// dial reaches a Docker Engine (swarm.Dial; a fake in tests), and
	// observer watches cfg.Engines; nil without engines.
	dial     func(context.Context, swarm.Host) (swarm.Engine, error)
	observer *observer
}

// New starts the hub's NATS server (unless external), connects to NATS and
// opens the HTTP listener; Run does the rest.
func New(ctx context.Context, cfg Config) (*Hub, error) {
	orDefault(&cfg.Poll, DefaultPoll)
	orDefault(&cfg.HTTPReadTimeout, DefaultReadTimeout)
	orDefault(&cfg.HTTPWriteTimeout, DefaultWriteTimeout)
	orDefault(&cfg.HTTPIdleTimeout, DefaultIdleTimeout)
	orDefault(&cfg.HTTPMaxConns, DefaultMaxConns)
	if cfg.HTTPListen == "" {
		cfg.HTTPListen = DefaultHTTPListen
	}
	if cfg.NATSListen == "" {
		cfg.NATSListen = DefaultNATSListen
	}
	// Addresses are checked before anything starts.
	if err := CheckListen("--listen", cfg.HTTPListen); err != nil {
		return nil, err
	}
	if cfg.NATSURL == "" {
		if err := CheckListen("--nats-listen", cfg.NATSListen); err != nil {
			return nil, err
		}
	}
	orDefault(&cfg.NATSReplicas, 1)
	orDefault(&cfg.leaseTTL, hubLeaseTTL)
	if err := CheckReplicas(cfg.NATSURL, cfg.NATSReplicas); err != nil {
		return nil, err
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	orDefault(&cfg.ObserveInterval, DefaultObserveInterval)
	orDefault(&cfg.ObserveWindow, DefaultObserveWindow)
	if len(cfg.Engines) > 0 && cfg.Actor == nil {
		return nil, errors.New("observing Docker Engines needs an actor to record the observations as")
	}
	h := &Hub{cfg: cfg, natsURL: cfg.NATSURL, natsOpts: cfg.NATSOptions, wake: make(chan struct{}, 1), fresh: make(chan struct{}, 1), appends: make(chan *pendingAppend, appendQueue), wakeGap: defaultWakeGap, retryBase: time.Second, dial: swarm.Dial}
	if len(cfg.Engines) > 0 {
		// h.dial read when dialling: a test puts a fake there after New.
		h.observer = newObserver(h.cfg, func(ctx context.Context, host swarm.Host) (swarm.Engine, error) { return h.dial(ctx, host) }, h.committed)
	}
	if err := h.openAPI(); err != nil {
		return nil, err
	}
	h.live = page.NewLive()
	var err error
	if h.page, err = page.New(page.Config{Store: cfg.Store, Live: h.live}); err != nil {
		return nil, err
	}
	if h.natsURL == "" {
		if h.cfg.DataDir == "" {
			h.cfg.DataDir = filepath.Join(cfg.Store.MetaDir(), "nats")
		}
		var err error
		if h.unlockData, err = lockData(h.cfg.DataDir); err != nil {
			return nil, err
		}
		if err := h.startNATS(); err != nil {
			h.Close()
			return nil, err
		}
	}
	h.pub, err = notify.Connect(ctx, notify.Options{URL: h.natsURL, Source: cfg.Store.Source(ctx), JSON: cfg.JSONBody, ConnectTimeout: 5 * time.Second,
		Replicas: cfg.NATSReplicas, NATSOptions: append(append([]nats.Option(nil), h.natsOpts...), keepConnected...)})
	if err != nil {
		h.Close()
		return nil, replicasHint(err)
	}
	if err := h.openState(ctx); err != nil {
		h.Close()
		return nil, replicasHint(err)
	}
	l, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		h.Close()
		return nil, cannotListen("the JSON API", "--listen", cfg.HTTPListen, err)
	}
	if h.tls != nil {
		// TLS under the limiter: the server's ConnState then names the
		// connections the limiter counts.
		l = tls.NewListener(l, h.tls)
	}
	h.listener = newConnLimiter(l, cfg.HTTPMaxConns)
	h.http = &http.Server{
		Handler:           h.routes(),
		ReadHeaderTimeout: min(readHeaderTimeout, cfg.HTTPReadTimeout),
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         h.listener.track,
	}
	// Open pages' streams end when the server shuts down, not after its
	// grace period.
	h.http.RegisterOnShutdown(h.live.Close)
	return h, nil
}

// orDefault sets *v to def when it is zero or less.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func (h *Hub) startNATS() error {
	listen := h.cfg.NATSListen // checked by New
	host, portStr, _ := net.SplitHostPort(listen)
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// NATS says nothing when it cannot listen: it is just never
		// ready. Try the address first to say why, and at once.
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return cannotListen("embedded NATS", "--nats-listen", listen, err)
		}
		l.Close()
	}
	keys, err := loadKeys(h.cfg.DataDir)
	if err != nil {
		return err
	}
	// Authentication is always on: the hub makes the keys itself, so there
	// is nothing to configure, and a server anyone on the host could
	// publish to would let anyone speak for the log.
	srv, err := server.NewServer(&server.Options{Host: host, Port: port, JetStream: true, StoreDir: h.cfg.DataDir, NoSigs: true, NoLog: true, ServerName: "meta-hub",
		Nkeys: keys.users()})
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("embedded NATS did not start on %s within 10s (--nats-listen)", listen)
	}
	h.embedded, h.natsURL = srv, srv.ClientURL()
	h.keys, h.natsOpts = keys, []nats.Option{keys.hubOption()}
	return nil
}

// keepConnected are the options of the hub's connections: a hub outlives
// any one server of a cluster (and the embedded server's restarts), so it
// reconnects for ever, to whichever server answers. Given after the
// caller's options, they win over notify.Connect's one-shot default.
var keepConnected = []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}

// replicasHint names the flag that asked for the replicas a cluster could
// not place.
func replicasHint(err error) error {
	if errors.Is(err, notify.ErrCannotPlace) {
		return fmt.Errorf("%w (--nats-replicas)", err)
	}
	return err
}

func (h *Hub) openState(ctx context.Context) error {
	nc, err := nats.Connect(h.natsURL, append(append([]nats.Option{nats.Name("meta hub")}, h.natsOpts...), keepConnected...)...)
	if err != nil {
		return err
	}
	h.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := notify.Prepare(ctx, js, h.cfg.NATSReplicas); err != nil {
		return err
	}
	h.kv, err = notify.EnsureBucket(ctx, js, jetstream.KeyValueConfig{Bucket: stateBucket, Description: "meta hub state", History: 1}, h.cfg.NATSReplicas)
	if err != nil {
		return fmt.Errorf("hub state: %w", err)
	}
	if h.leases, err = notify.EnsureBucket(ctx, js, leaseConfig(h.cfg.leaseTTL), h.cfg.NATSReplicas); err != nil {
		return fmt.Errorf("hub lease: %w", err)
	}
	// A nudge is only a wake: what it carries is never read.
	if _, err := nc.Subscribe(notify.SyncSubject, func(m *nats.Msg) {
		h.Wake()
		if m.Reply != "" {
			m.Respond(nil)
		}
	}); err != nil {
		return fmt.Errorf("listen for nudges on %s: %w", notify.SyncSubject, err)
	}
	return h.listenAppends()
}

// routes is the JSON API plus the webhook receivers.
func (h *Hub) routes() http.Handler {
	mux := http.NewServeMux()
	api := NewHandler(h.cfg.Store)
	if h.auth == nil { // a Hub a test made without New: its clone's tokens
		c, _ := tokens.NewChecker(TokensFile(h.cfg.Store))
		h.auth = &auth{tokens: c}
	}
	mux.Handle("/v1/", h.auth.wrap(api))
	if h.page == nil { // a Hub a test made without New: a page not live
		pg, err := page.New(page.Config{Store: h.cfg.Store})
		if err != nil {
			panic(err) // the embedded templates do not parse: meta's bug
		}
		h.page = pg
	}
	// The page: its assets open to all (the sign-in page needs them, and
	// they are the same in every binary), the rest behind the tokens.
	mux.Handle("GET /static/", h.page)
	mux.Handle("/login", http.NewCrossOriginProtection().Handler(h.auth.login(h.page)))
	mux.Handle("POST /logout", http.NewCrossOriginProtection().Handler(h.auth.logout()))
	pages := h.auth.page(h.page, h.page)
	// Open to all: it says only that the hub answers, for a proxy's or
	// orchestrator's health check.
	mux.Handle("/healthz", api)
	if h.observer != nil {
		// Still open to all, and still no names: how many Engines the hub
		// watches and reaches, for a health check that wants to know.
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, h.observer.health())
		})
	}
	k := &hooks{secret: h.cfg.WebhookSecret, wake: h.Wake}
	for name := range forges {
		mux.HandleFunc("POST /hooks/"+name, k.handle(name))
	}
	return jsonErrors(mux, pages)
}

// NATSURL is where followers reach the hub's NATS.
func (h *Hub) NATSURL() string { return h.natsURL }

// FollowerSeed is the file of the followers' credentials (an nkey seed,
// for --nats-nkey) on the embedded NATS server; "" with an external one,
// whose credentials its operators hand out.
func (h *Hub) FollowerSeed() string {
	if h.keys == nil {
		return ""
	}
	return h.keys.followerFile
}

// AppenderSeed is the file of the appenders' credentials on the embedded
// NATS server (for --nats-nkey: meta append then hands its events to the
// hub's group commit); "" with an external one.
func (h *Hub) AppenderSeed() string {
	if h.keys == nil {
		return ""
	}
	return h.keys.appenderFile
}

// HubSeed is the file of the hub's own credentials on the embedded NATS
// server, which may publish events; "" with an external one.
func (h *Hub) HubSeed() string {
	if h.keys == nil {
		return ""
	}
	return h.keys.hubFile
}

// HTTPAddr is where the JSON API listens.
func (h *Hub) HTTPAddr() string { return h.listener.Addr().String() }

// defaultWakeGap is Hub.wakeGap.
const defaultWakeGap = 500 * time.Millisecond

// Wake makes the hub sync and publish now rather than at the next poll
// (or, when it synced less than wakeGap ago, once that much time passed).
// Wakes that come meanwhile are one.
func (h *Hub) Wake() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// committed makes the hub publish what it committed itself, at once.
func (h *Hub) committed() {
	select {
	case h.fresh <- struct{}{}:
	default:
	}
}

// Run serves until ctx ends, then shuts down gracefully: in-flight HTTP
// requests finish, the NATS server stops after its clients are closed.
func (h *Hub) Run(ctx context.Context) error {
	defer h.Close()
	h.started.Store(time.Now())
	httpErr := make(chan error, 1)
	go func() { httpErr <- h.http.Serve(h.listener) }()
	h.openOutboxes(ctx)
	var deliveries sync.WaitGroup
	if len(h.outboxes) > 0 {
		// Taken (or waited for) before the first cycle: a hub alone
		// delivers from its first cycle on.
		h.leader = newLeader(h.leases, h.cfg.leaseTTL)
		if !h.leader.try(ctx) {
			h.cfg.Logf("webhooks: another hub delivers them; this one takes over if it stops")
		}
		defer h.leader.release()
		deliveries.Add(1)
		go func() {
			defer deliveries.Done()
			h.leader.keep(ctx, func() {
				h.cfg.Logf("webhooks: this hub delivers them now")
				h.Wake() // the next cycle feeds the endpoints
			})
		}()
	}
	for _, o := range h.outboxes {
		deliveries.Add(1)
		go func() { defer deliveries.Done(); h.deliver(ctx, o) }()
	}
	// Deliveries under way finish, and save how far they got, before the
	// connection to the bucket closes.
	defer deliveries.Wait()
	deliveries.Add(1)
	go func() { defer deliveries.Done(); h.groupCommits(ctx) }()
	if h.observer != nil {
		deliveries.Add(1)
		go func() { defer deliveries.Done(); h.observer.run(ctx) }()
		h.cfg.Logf("observing %s", engineList(h.cfg.Engines))
	}
	scheme := "http"
	if h.tls != nil {
		scheme = "https"
	}
	creds := ""
	if h.keys != nil {
		creds = " (followers connect with --nats-nkey " + h.keys.followerFile + ")"
	}
	h.cfg.Logf("serving the log at %s://%s, events on %s%s", scheme, h.HTTPAddr(), notify.DisplayURL(h.natsURL), creds)
	tick := time.NewTicker(h.cfg.Poll)
	defer tick.Stop()
	last := time.Now()
	for {
		if ctx.Err() == nil {
			// A wake that came before this cycle starts is answered by it.
			select {
			case <-h.wake:
			default:
			}
			last = time.Now()
			h.cycle(ctx)
		}
		if stop, err := h.wait(ctx, tick.C, httpErr, last); stop {
			return err
		}
	}
}

// wait waits for the next cycle: a tick, or a wake (wakeGap after the
// last cycle at the soonest); meanwhile it publishes what the hub
// committed itself at once. stop says Run is over, and how.
func (h *Hub) wait(ctx context.Context, tick <-chan time.Time, httpErr <-chan error, last time.Time) (stop bool, err error) {
	var gap <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return true, h.http.Shutdown(shutdown)
		case err := <-httpErr:
			if !errors.Is(err, http.ErrServerClosed) {
				return true, fmt.Errorf("http: %w", err)
			}
			return true, nil
		case <-h.fresh:
			// Committed here (an observation): nothing to fetch, only to
			// publish.
			h.publish(ctx)
		case <-tick:
			return false, nil
		case <-h.wake:
			if gap == nil { // later wakes are the same one
				gap = time.After(h.wakeGap - time.Since(last))
			}
		case <-gap:
			return false, nil
		}
	}
}

// cycle syncs with the remote, if any, and publishes what git has that the
// stream may not.
func (h *Hub) cycle(ctx context.Context) {
	h.cycles.Add(1)
	if warning, err := h.cfg.Store.Refresh(ctx, true); err != nil {
		h.cfg.Logf("sync: %v", err)
	} else if warning != "" {
		h.cfg.Logf("%s", warning)
	}
	h.publish(ctx)
	h.checkpoint(ctx)
}

// actor is who the hub's own writes are made by.
func (h *Hub) actor() *metav1.Actor {
	if h.cfg.Actor != nil {
		return h.cfg.Actor
	}
	return &metav1.Actor{Name: "meta serve"}
}

// checkpoint publishes the log's derived state when the log has grown
// CheckpointEvery commits past the last one (or has none), so that a new
// clone's first read walks at most that many commits.
func (h *Hub) checkpoint(ctx context.Context) {
	every := h.cfg.CheckpointEvery
	if every == 0 {
		every = DefaultCheckpointEvery
	}
	s := h.cfg.Store
	if every < 0 || !s.HasRemote(ctx) {
		return
	}
	// A log shorter than that needs none: its walk is short.
	if behind, _, err := s.DerivedBehind(ctx, h.checkpointAt); err != nil || behind < every {
		return
	}
	tip := s.RemoteTip()
	if tip == h.checkpointFailed {
		return // said once for this tip; tried again when it moves
	}
	r, err := s.PublishDerived(ctx, h.actor(), time.Now())
	if err != nil {
		h.checkpointFailed = tip
		h.cfg.Logf("checkpoint: %v", err)
		return
	}
	h.checkpointAt = r.At
	h.cfg.Logf("published the derived state at %s (%s) for new clones", r.At[:12], record.Count(r.Apps, "app"))
}

// publish publishes what git has that the stream may not.
func (h *Hub) publish(ctx context.Context) {
	if n, err := h.CatchUp(ctx); err != nil {
		h.cfg.Logf("publish: %v", err)
	} else if n > 0 {
		h.cfg.Logf("published %s", record.Count(n, "event"))
		if n > 1000 {
			// A first catch-up reads the whole log once; give that memory
			// back instead of keeping it for the hub's idle life.
			debug.FreeOSMemory()
		}
	}
}

// CatchUp publishes every event added to git since the last commit it
// published up to, and remembers the new one; it hands the same events to
// the webhooks. What it publishes is only what the store read from git:
// the hub is the one publisher of events.
func (h *Hub) CatchUp(ctx context.Context) (int, error) {
	last := ""
	if e, err := h.kv.Get(ctx, publishedKey); err == nil {
		last = string(e.Value())
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, err
	}
	events, tip, skipped, err := h.cfg.Store.Since(ctx, last)
	if err != nil {
		return 0, err
	}
	// Webhooks get the same events, whatever becomes of the publishing,
	// open pages fetch themselves again, and the observer looks at the
	// stacks of their apps.
	h.feed(ctx, last, events, tip)
	if h.live != nil {
		h.live.Publish(events)
	}
	if h.observer != nil {
		h.observer.newEvents(events)
	}
	for _, bad := range skipped {
		// Said once: the hub moves past it with the rest of the commits.
		h.cfg.Logf("not published, not a valid event (quarantined; meta verify lists it): %s", bad)
	}
	for i, ev := range events {
		if err := h.pub.Publish(ctx, ev); err != nil {
			return i, err
		}
		h.published.Add(1)
	}
	if tip != last {
		if _, err := h.kv.PutString(ctx, publishedKey, tip); err != nil {
			return len(events), err
		}
	}
	return len(events), nil
}

// Close releases what New took.
func (h *Hub) Close() {
	if h.pub != nil {
		h.pub.Close()
	}
	if h.nc != nil {
		h.nc.Close()
	}
	if h.listener != nil {
		h.listener.Close()
	}
	if h.embedded != nil {
		h.embedded.Shutdown()
		h.embedded.WaitForShutdown()
	}
	if h.unlockData != nil {
		h.unlockData()
	}
}

// CheckListen says whether addr, given with flag, is an address to listen
// on: host:port, the host may be empty (every interface), the port a
// number from 0 to 65535 (0: any free one).
func CheckListen(flag, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: want host:port, e.g. 127.0.0.1:8080 (port 0 for any free one)", flag, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s %q: port %q is not a number from 0 to 65535", flag, addr, port)
	}
	return nil
}

// CheckReplicas says whether the hub can keep n replicas (--nats-replicas)
// of its stream and buckets on NATS at url: 1 to 5 (JetStream keeps at
// most five), more than one only on an external cluster. Whether that
// cluster can place them, the hub learns when it makes them.
func CheckReplicas(url string, n int) error {
	if n < 1 || n > 5 {
		return fmt.Errorf("--nats-replicas %d: want 1 to 5", n)
	}
	if url == "" && n > 1 {
		return fmt.Errorf("--nats-replicas %d: the embedded NATS server is one server and keeps one copy; replicas need an external cluster (--nats)", n)
	}
	return nil
}

// cannotListen says what cannot listen on addr, why, and which flag picks
// another address.
func cannotListen(what, flag, addr string, err error) error {
	why := err
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		why = sys.Err // "address already in use", not the whole chain again
	}
	return fmt.Errorf("%s cannot listen on %s: %w; choose another address with %s", what, addr, why, flag)
}

// Stats is what a hub did while it ran.
type Stats struct {
	Served    time.Duration
	Published int // events the hub put on NATS from git
	Webhooks  int // endpoints that get every event
	Delivered int // webhook deliveries the endpoint took (2xx)
	Failed    int // webhook delivery attempts that failed (retried, or dropped)
	// Engines are the Docker Engines observed; Observed the observations
	// recorded; Lost and Regained how often an Engine was lost and back.
	Engines, Observed, Lost, Regained int
}

// Stats says what the hub did so far.
func (h *Hub) Stats() Stats {
	s := Stats{
		Published: int(h.published.Load()),
		Webhooks:  len(h.cfg.Webhooks),
		Delivered: int(h.delivered.Load()),
		Failed:    int(h.failed.Load()),
		Engines:   len(h.cfg.Engines),
	}
	if o := h.observer; o != nil {
		s.Observed, s.Lost, s.Regained = int(o.observations.Load()), int(o.lost.Load()), int(o.regained.Load())
	}
	if start, ok := h.started.Load().(time.Time); ok {
		s.Served = time.Since(start)
	}
	return s
}

// String says it in a line: "served 12m3s: published 3 events, delivered
// 5 webhooks (1 failed attempt)"; webhooks only when there are some.
func (s Stats) String() string {
	served := s.Served.Round(time.Second)
	if s.Served < time.Second {
		served = s.Served.Round(time.Millisecond)
	}
	line := fmt.Sprintf("served %s: published %s", served, record.Count(s.Published, "event"))
	if s.Webhooks > 0 {
		line += ", delivered " + record.Count(s.Delivered, "webhook")
		if s.Failed > 0 {
			line += " (" + record.Count(s.Failed, "failed attempt") + ")"
		}
	}
	if s.Engines > 0 {
		line += ", recorded " + record.Count(s.Observed, "observation") + " of " + record.Count(s.Engines, "Docker Engine")
		if s.Lost > 0 {
			line += fmt.Sprintf(" (lost %d, back %d)", s.Lost, s.Regained)
		}
	}
	return line
}
