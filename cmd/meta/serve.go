package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/hub"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newServe(e *env) *cobra.Command {
	cfg := hub.Config{}
	var secretFile string
	var noObserve bool
	var proxies []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hub: NATS for followers, the log as JSON and as a live page over HTTP, kept in sync",
		Long: `serve runs until interrupted. It keeps this clone in sync with its remote
(every --poll), puts every event it finds in git on NATS, including events
appended offline or while NATS was down, and serves the log as JSON:

  GET /v1/apps                  every app's head
  GET /v1/apps/{domain}         one app's head
  GET /v1/apps/{domain}/log?n=N its events, newest first
  GET /healthz

and, on the same listener, as a web page at / (open http://127.0.0.1:8080/):
every app with what the log says and what Swarm runs, drift, locks, forks
and channel lag, filterable; a page per app with its timeline; the
channels, the plan and this week's changes. Open pages update themselves
within a second of each change the hub publishes.

Once the hub has a token (meta token create NAME), every /v1/ request must
send one, as "Authorization: Bearer TOKEN"; /healthz and the push-webhook
receivers never ask for one. On an address beyond loopback (--listen
0.0.0.0:8080) the hub refuses to start without a token, unless --insecure.
With --tls-cert and --tls-key it serves HTTPS; or put it behind a reverse
proxy that terminates TLS and passes the Authorization header on. The page
asks for a token (and keeps it in an HttpOnly, SameSite cookie), or, with
--identity-header, believes the user a reverse proxy in front of it names
in that header (single sign-on), from --trusted-proxy addresses only
(default: loopback).

By default it runs its own NATS server with JetStream (on --nats-listen, data
under .git/meta/nats or --data), which lets in only those with its keys: it
writes follower.nk there (read-only: meta watch, and meta append's nudge,
take it with --nats-nkey) and hub.nk (its own, which may publish), and says
where on start. With --nats URL it uses that server or cluster instead, with
the hub's credentials from --nats-creds or --nats-nkey, and --nats-replicas N
keeps the stream and buckets on N of its servers; two hubs of one log may run
against one cluster at once (one delivers the webhooks). The hub is the only
publisher of events: an append nudges it, and it publishes what it reads from
git.

Every new event is also POSTed, as JSON signed per the Standard Webhooks
spec, to the webhooks listed in meta.yaml (each with its whsec_ secret in
the environment variable it names); failures are retried with backoff, and
pending deliveries survive a restart.

Push webhooks from the forge that holds the remote make the hub sync at
once: POST /hooks/gitea, /hooks/forgejo or /hooks/github, as JSON or as a
form (GitHub's default), signed with the secret in --webhook-secret-file or
$META_WEBHOOK_SECRET (without one, webhooks are off).

It also watches the Docker Engine of every server meta.yaml's servers: map
gives a docker_host (unix://, tcp:// with docker_cert_path for TLS, or
ssh://user@host as abra reaches servers), and records an observation of an
app whenever what Swarm runs for it changes: versions, update state,
replicas running of desired per service, the last task error, a stack gone.
It catches up on start, follows each Engine's events, looks at every stack
every --observe-interval besides, and reconnects with backoff when an Engine
is lost (one line when lost, one when back). A service's recovery is
recorded once it has held for --observe-window, so a crash loop writes one
observation, not one per crash. Observations are recorded as the operator
meta names for this machine (--operator, $META_OPERATOR or git's user.name)
and signed as every append is; without one, or without a signing key where
meta.yaml requires signatures, serve warns and observes nothing, and goes
on serving the log. --no-observe turns the watching off.

Stopped (SIGINT, SIGTERM), it says what it did in one line on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, f := range []struct{ flag, addr string }{{"--listen", cfg.HTTPListen}, {"--nats-listen", cfg.NATSListen}} {
				if err := hub.CheckListen(f.flag, f.addr); err != nil {
					return usageError{err}
				}
			}
			for _, f := range []struct {
				flag string
				d    time.Duration
			}{{"--http-read-timeout", cfg.HTTPReadTimeout}, {"--http-write-timeout", cfg.HTTPWriteTimeout}, {"--http-idle-timeout", cfg.HTTPIdleTimeout}} {
				if f.d <= 0 {
					return usageError{fmt.Errorf("%s %s: want a duration above zero", f.flag, f.d)}
				}
			}
			for _, f := range []struct {
				flag string
				d    time.Duration
			}{{"--observe-interval", cfg.ObserveInterval}, {"--observe-window", cfg.ObserveWindow}} {
				if f.d <= 0 {
					return usageError{fmt.Errorf("%s %s: want a duration above zero", f.flag, f.d)}
				}
			}
			if err := hub.CheckIdentityHeader(cfg.IdentityHeader); err != nil {
				return usageError{err}
			}
			if cfg.IdentityHeader == "" && len(proxies) > 0 {
				return usageError{errors.New("--trusted-proxy: without --identity-header there is nothing to trust a proxy with")}
			}
			for _, v := range proxies {
				p, err := parseProxy(v)
				if err != nil {
					return usageError{err}
				}
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			}
			if cfg.HTTPMaxConns <= 0 {
				return usageError{fmt.Errorf("--http-max-conns %d: want at least 1", cfg.HTTPMaxConns)}
			}
			s, err := e.open()
			if err != nil {
				return err
			}
			cfg.Store = s
			for _, w := range s.Config().Webhooks {
				secret := e.getenv(w.SecretEnv)
				if secret == "" {
					return usageError{fmt.Errorf("webhook %s: $%s is not set; it holds the endpoint's whsec_ signing secret", w.Name, w.SecretEnv)}
				}
				if _, err := hub.ParseSecret(secret); err != nil {
					return usageError{fmt.Errorf("webhook %s: $%s: %w", w.Name, w.SecretEnv, err)}
				}
				cfg.Webhooks = append(cfg.Webhooks, hub.Webhook{Name: w.Name, URL: w.URL, Secret: secret})
			}
			cfg.WebhookSecret = []byte(e.getenv("META_WEBHOOK_SECRET"))
			if secretFile != "" {
				data, err := os.ReadFile(secretFile)
				if err != nil {
					return usageError{fmt.Errorf("--webhook-secret-file: %w", err)}
				}
				cfg.WebhookSecret = bytes.TrimSpace(data)
			}
			if !noObserve {
				if err := e.observeEngines(s, &cfg); err != nil {
					return err
				}
			}
			url, o, err := e.natsOptions()
			if err != nil {
				return usageError{err}
			}
			cfg.NATSURL, cfg.NATSOptions, cfg.JSONBody = url, o.NATSOptions, o.JSON
			if err := hub.CheckReplicas(url, cfg.NATSReplicas); err != nil {
				return usageError{err}
			}
			cfg.Logf = func(format string, args ...any) {
				fmt.Fprintf(e.stderr, "meta: serve: %s\n", printableLines(fmt.Sprintf(format, args...)))
			}
			h, err := hub.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			err = h.Run(cmd.Context())
			if cmd.Context().Err() != nil {
				// Stopped, as asked: one line on what it did.
				fmt.Fprintf(e.stderr, "meta: %s\n", h.Stats())
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cfg.HTTPListen, "listen", hub.DefaultHTTPListen, "address of the JSON API")
	cmd.Flags().StringVar(&cfg.NATSListen, "nats-listen", hub.DefaultNATSListen, "address of the embedded NATS server")
	cmd.Flags().IntVar(&cfg.NATSReplicas, "nats-replicas", 1, "with --nats, how many servers of the cluster keep the events stream and meta's buckets (raised when fewer, never lowered)")
	cmd.Flags().StringVar(&cfg.DataDir, "data", "", "where the embedded NATS server keeps its data (default .git/meta/nats)")
	cmd.Flags().DurationVar(&cfg.Poll, "poll", hub.DefaultPoll, "how often to sync with the remote and publish")
	cmd.Flags().IntVar(&cfg.CheckpointEvery, "checkpoint-every", hub.DefaultCheckpointEvery, "publish the derived state for new clones (meta checkpoint) when the log has grown this many commits past the last; -1 never")
	cmd.Flags().DurationVar(&cfg.HTTPReadTimeout, "http-read-timeout", hub.DefaultReadTimeout, "how long a request, headers and body, may take to arrive")
	cmd.Flags().DurationVar(&cfg.HTTPWriteTimeout, "http-write-timeout", hub.DefaultWriteTimeout, "how long writing an answer may take")
	cmd.Flags().DurationVar(&cfg.HTTPIdleTimeout, "http-idle-timeout", hub.DefaultIdleTimeout, "how long a keep-alive connection may wait for its next request")
	cmd.Flags().IntVar(&cfg.HTTPMaxConns, "http-max-conns", hub.DefaultMaxConns, "open HTTP connections at most; at the cap the longest idle one makes way")
	cmd.Flags().BoolVar(&cfg.Insecure, "insecure", false, "serve the JSON API without tokens even beyond loopback (anyone who reaches it reads the log)")
	cmd.Flags().StringVar(&cfg.TLSCert, "tls-cert", "", "serve the JSON API over HTTPS with this PEM certificate chain (with --tls-key)")
	cmd.Flags().StringVar(&cfg.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	cmd.Flags().StringVar(&cfg.IdentityHeader, "identity-header", "", "header in which a reverse proxy in front of the hub names its signed-in user (e.g. X-Forwarded-User); the page believes it instead of asking for a token")
	cmd.Flags().StringSliceVar(&proxies, "trusted-proxy", nil, "address or CIDR of the reverse proxy whose --identity-header is believed (repeatable; default 127.0.0.0/8 and ::1)")
	cmd.Flags().StringVar(&secretFile, "webhook-secret-file", "", "file holding the secret incoming webhooks are signed with (default $META_WEBHOOK_SECRET)")
	cmd.Flags().DurationVar(&cfg.ObserveInterval, "observe-interval", hub.DefaultObserveInterval, "how often to look at every stack of every Docker Engine, besides following their events")
	cmd.Flags().DurationVar(&cfg.ObserveWindow, "observe-window", hub.DefaultObserveWindow, "how long a service's recovery must hold before it is recorded")
	cmd.Flags().BoolVar(&noObserve, "no-observe", false, "do not watch the servers' Docker Engines")
	return cmd
}

// observeEngines fills in cfg the Docker Engines meta.yaml names and who
// records what they run. A hub that cannot record (nobody to record as, no
// key where signatures are required) warns and observes nothing: meta.yaml
// is shared, and a docker_host added there must not stop every hub that
// reads it from serving the log.
func (e *env) observeEngines(s *store.Store, cfg *hub.Config) error {
	engines := s.Config().Engines()
	if len(engines) == 0 {
		return nil
	}
	what := "the Docker Engines of " + record.Count(len(engines), "server")
	actor, err := e.actor(s.Root())
	if err != nil {
		var u usageError
		if !errors.As(err, &u) || e.operator != "" || e.getenv("META_OPERATOR") != "" {
			return err // --operator or $META_OPERATOR given, and wrong
		}
		e.warn("not observing %s: %v (or run with --no-observe)", what, err)
		return nil
	}
	if s.Config().SignaturesRequired() && e.signer == nil {
		e.warn("not observing %s: meta.yaml requires signed commits and meta has no key to sign with: %s (or run with --no-observe)", what, e.noSigner)
		return nil
	}
	for i := range engines {
		engines[i].DockerCertPath = config.ExpandHome(engines[i].DockerCertPath, e.getenv("HOME"))
	}
	cfg.Engines, cfg.Actor = engines, actor
	return nil
}

// parseProxy reads a --trusted-proxy: an address (one host) or a CIDR.
func parseProxy(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(v); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("--trusted-proxy %q: want an IP address (127.0.0.1) or a CIDR (10.0.0.0/24)", v)
}
