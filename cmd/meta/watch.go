package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newWatch(e *env) *cobra.Command {
	var asJSON, fromStart, parked bool
	var execCmd, name, since, channel string
	var maxAttempts int
	var backoff time.Duration
	cmd := &cobra.Command{
		Use:   "watch [DOMAIN|SUBJECT | --channel RECIPE/CHANNEL]",
		Short: "Follow new events as they are announced on NATS",
		Long: fmt.Sprintf(`watch prints every event announced on NATS (--nats or $META_NATS_URL), for one
app (DOMAIN) or a subject filter under meta.events (e.g. meta.events.coop.>),
or all of them. It is a durable follower: stopped and started again under the
same --name, it carries on where it stopped, missing and repeating nothing.
It waits for NATS when NATS is not up, saying so once, and once when it is back.

A --name new to the server starts with the events announced from then on;
--from-start starts it with the oldest event the stream keeps, and --since
with the first announced at or after a time (RFC 3339) or that long ago (2h).
A --name that exists resumes where it stopped, whatever they say. One watcher
at a time follows under a name: a second is refused (exit 3); one that died
without stopping keeps its name for up to %s.

With --exec CMD it runs CMD (through sh -c) for each event instead, with the
event as JSON on standard input and in the environment: META_EVENT_ID,
META_EVENT_KIND, META_EVENT_OUTCOME, META_EVENT_PROJECT, META_EVENT_ENV,
META_EVENT_DOMAIN, META_EVENT_VERSION, META_EVENT_OPERATOR. An event whose
command fails comes again after --backoff, doubling each time (up to %s),
and the events behind it wait; after --max-attempts it is parked: reported,
kept for --parked to list, and the next events go on.

--channel RECIPE/CHANNEL follows only that channel's promotions (the subject
meta.events._recipes.<recipe>.<channel>.promote), so a server can follow its
channel on its own: with --exec, CMD runs once per promotion, in order, with
META_CHANNEL (recipe/channel), META_RECIPE and META_EVENT_VERSION the promoted
version besides the variables above, e.g.
  meta watch --channel nextcloud/stable --exec 'abra app upgrade -n cloud.example.com "$META_EVENT_VERSION"'
Its --name defaults to watch-<user>-<host>-<recipe>-<channel>.

--parked lists the events the follower --name parked, and exits.`, notify.LeaseTTL, fmt.Sprintf("%dm", int(notify.MaxBackoff.Minutes()))),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url, o, err := e.natsOptions()
			if err != nil {
				return usageError{err}
			}
			if url == "" {
				return usageError{errors.New("watch needs a NATS server: --nats URL or META_NATS_URL")}
			}
			var ref *projects.ChannelRef
			if cmd.Flags().Changed("channel") {
				r, err := projects.ParseChannelRef(channel)
				if err != nil {
					return usageError{fmt.Errorf("--channel: %w", err)}
				}
				if len(args) == 1 {
					return usageError{errors.New("--channel follows a channel's promotions; it takes no DOMAIN or SUBJECT")}
				}
				ref = &r
			}
			if !cmd.Flags().Changed("name") {
				name = defaultFollowerName()
				if ref != nil {
					// Its own name: a watch of everything on the same
					// machine keeps its own place in the stream.
					name += "-" + ref.Recipe + "-" + ref.Channel
				}
			}
			if err := notify.ValidName(name); err != nil {
				return usageError{fmt.Errorf("--name: %w", err)}
			}
			o.URL, o.ConnectTimeout = url, 5*time.Second
			if parked {
				for _, f := range []string{"exec", "from-start", "since", "max-attempts", "backoff"} {
					if cmd.Flags().Changed(f) {
						return usageError{fmt.Errorf("--parked lists parked events; it takes no --%s", f)}
					}
				}
				if len(args) == 1 || ref != nil {
					return usageError{errors.New("--parked lists a follower's parked events; it takes no DOMAIN, SUBJECT or --channel")}
				}
				return e.listParked(cmd.Context(), o, name, asJSON)
			}
			filter := ""
			if len(args) == 1 {
				filter = args[0]
			}
			subject, err := notify.FilterSubject(filter)
			if ref != nil {
				subject, err = notify.PromotionFilter(*ref)
			}
			if err != nil {
				return usageError{err}
			}
			var start time.Time
			if since != "" {
				if fromStart {
					return usageError{errors.New("--from-start and --since both say where to start: give one")}
				}
				if start, err = parseSince(since, time.Now()); err != nil {
					return usageError{err}
				}
			}
			if maxAttempts < 0 {
				return usageError{fmt.Errorf("--max-attempts %d: give 1 or more, or 0 to retry forever", maxAttempts)}
			}
			if backoff <= 0 {
				return usageError{fmt.Errorf("--backoff %s: give a pause longer than zero", backoff)}
			}
			handle := func(ev *metav1.Event) error {
				if err := e.show(ev, asJSON); err != nil {
					// Where events go is gone: retrying or parking
					// would only lose them.
					return notify.Fatal(fmt.Errorf("print event %s: %w", ev.GetId(), err))
				}
				return nil
			}
			if execCmd != "" {
				handle = func(ev *metav1.Event) error { return e.runFor(ev, execCmd, ref) }
			}
			if ref != nil {
				handle = onlyPromotions(*ref, handle, e.warn)
			}
			return notify.Follow(cmd.Context(), notify.FollowOptions{
				Options: o, Name: name, Filter: subject,
				FromStart: fromStart, Since: start,
				MaxAttempts: maxAttempts, Backoff: backoff,
				Logf: e.warn,
			}, handle)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as a line of JSON (the keys of meta log --json); with --parked, a JSON array")
	cmd.Flags().StringVar(&execCmd, "exec", "", "run this command for each event instead of printing it")
	cmd.Flags().StringVar(&name, "name", "", "the follower's name, to resume under: letters, digits, '_' and '-' (default watch-<user>-<host>)")
	cmd.Flags().BoolVar(&fromStart, "from-start", false, "a new --name starts with the oldest event the stream keeps")
	cmd.Flags().StringVar(&since, "since", "", "a new --name starts with the events announced since this time (RFC 3339) or this long ago (2h)")
	cmd.Flags().IntVar(&maxAttempts, "max-attempts", 5, "attempts at an event whose --exec fails before it is parked; 0 retries forever")
	cmd.Flags().DurationVar(&backoff, "backoff", time.Second, "the pause after an event's first failed attempt; it doubles after each")
	cmd.Flags().BoolVar(&parked, "parked", false, "list the events this --name parked, and exit")
	cmd.Flags().StringVar(&channel, "channel", "", "follow only the promotions of this channel (RECIPE/CHANNEL, e.g. nextcloud/stable)")
	return cmd
}

// parseSince reads --since: a time in RFC 3339, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--since %s: give how long ago, longer than zero (2h)", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q is neither a time in RFC 3339 (2026-01-02T15:04:05Z) nor a duration (2h)", s)
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("--since %s is in the future", s)
	}
	return t, nil
}

// listParked prints the events a follower parked, oldest first.
func (e *env) listParked(ctx context.Context, o notify.Options, name string, asJSON bool) error {
	list, err := notify.ListParked(ctx, o, name)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, p := range printableCopy(list) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", when(p.Time), p.EventID, orDash(p.Domain), p.Kind, record.Count(int(p.Attempts), "attempt"), p.Error)
	}
	return tw.Flush()
}

// show prints one event as meta log does.
func (e *env) show(ev *metav1.Event, asJSON bool) error {
	v := record.ViewOf(ev)
	if asJSON {
		return writeJSON(e.stdout, v)
	}
	v = printableCopy(v)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", when(v.Time), v.ID, v.Domain, v.Kind, v.Outcome, orDash(v.Version), v.Operator, v.Message)
	return tw.Flush()
}

// onlyPromotions hands handle the promotions of ref and nothing else. The
// subject filter already says so; this holds even where a subject's
// tokens are shared ('.' and '_' are one token), or a cluster lets
// someone else publish there: an event whose log is not the channel's is
// said and skipped, never run.
func onlyPromotions(ref projects.ChannelRef, handle func(*metav1.Event) error, warn func(string, ...any)) func(*metav1.Event) error {
	return func(ev *metav1.Event) error {
		a := record.Address(ev)
		if ev.GetKind() != metav1.Kind_KIND_PROMOTE || a != ref.Address() || ev.GetRecipe() != ref.Recipe {
			warn("event %s is not a promotion of %s (%s of %s); skipped", ev.GetId(), ref, record.KindName(ev.GetKind()), printable(a.String()))
			return nil
		}
		return handle(ev)
	}
}

// runFor runs the --exec command for one event; ref, when set, is the
// channel whose promotion it is.
func (e *env) runFor(ev *metav1.Event, command string, ref *projects.ChannelRef) error {
	v := record.ViewOf(ev)
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c := exec.Command("sh", "-c", command)
	c.Stdin = bytes.NewReader(append(data, '\n'))
	c.Stdout, c.Stderr = e.stdout, e.stderr
	c.Env = append(os.Environ(),
		"META_EVENT_ID="+v.ID, "META_EVENT_KIND="+v.Kind, "META_EVENT_OUTCOME="+v.Outcome,
		"META_EVENT_PROJECT="+v.Project, "META_EVENT_ENV="+v.Env, "META_EVENT_DOMAIN="+v.Domain,
		"META_EVENT_VERSION="+v.Version, "META_EVENT_OPERATOR="+v.Operator)
	if ref != nil {
		c.Env = append(c.Env, "META_CHANNEL="+ref.String(), "META_RECIPE="+ref.Recipe)
	}
	if err := c.Run(); err != nil {
		return fmt.Errorf("--exec failed: %w", err)
	}
	return nil
}

// defaultFollowerName is stable per user and machine, so a restarted
// watch resumes.
func defaultFollowerName() string {
	who := "someone"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return '_'
		}, s)
	}
	return "watch-" + clean(who) + "-" + clean(host)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
