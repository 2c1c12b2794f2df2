package main

import (
	"bytes"
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
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func newWatch(e *env) *cobra.Command {
	var asJSON bool
	var execCmd, name string
	cmd := &cobra.Command{
		Use:   "watch [DOMAIN|SUBJECT]",
		Short: "Follow new events as they are announced on NATS",
		Long: `watch prints every event announced on NATS (--nats or $META_NATS_URL), for one
app (DOMAIN) or a subject filter under meta.events (e.g. meta.events.coop.>),
or all of them. It is a durable follower: stopped and started again under the
same --name, it carries on where it stopped, missing and repeating nothing.

With --exec CMD it runs CMD (through sh -c) for each event instead, with the
event as JSON on standard input and in the environment: META_EVENT_ID,
META_EVENT_KIND, META_EVENT_OUTCOME, META_EVENT_PROJECT, META_EVENT_ENV,
META_EVENT_DOMAIN, META_EVENT_VERSION, META_EVENT_OPERATOR. An event whose
command fails comes again five seconds later.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url, o := e.natsOptions()
			if url == "" {
				return usageError{errors.New("watch needs a NATS server: --nats URL or META_NATS_URL")}
			}
			filter := ""
			if len(args) == 1 {
				filter = args[0]
			}
			subject, err := notify.FilterSubject(filter)
			if err != nil {
				return usageError{err}
			}
			if name == "" {
				name = defaultFollowerName()
			}
			handle := func(ev *metav1.Event) error { return e.show(ev, asJSON) }
			if execCmd != "" {
				handle = func(ev *metav1.Event) error { return e.runFor(ev, execCmd) }
			}
			return notify.Follow(cmd.Context(), notify.FollowOptions{
				Options: notify.Options{URL: url, ConnectTimeout: 5 * time.Second, NATSOptions: o.NATSOptions},
				Name:    name, Filter: subject,
				OnError: func(err error) { e.warn("%v", err) },
			}, handle)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as a line of JSON (the keys of meta log --json)")
	cmd.Flags().StringVar(&execCmd, "exec", "", "run this command for each event instead of printing it")
	cmd.Flags().StringVar(&name, "name", "", "the follower's name, to resume under (default watch-<user>-<host>)")
	return cmd
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

// runFor runs the --exec command for one event.
func (e *env) runFor(ev *metav1.Event, command string) error {
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
	if err := c.Run(); err != nil {
		e.warn("--exec for event %s failed (%v); it comes again", v.ID, err)
		return err
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
