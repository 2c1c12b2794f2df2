package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	"git.coopcloud.tech/coop-cloud/meta/opsync"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

func newObserve(e *env) *cobra.Command {
	var inspect, stack string
	var docker, asJSON bool
	cmd := &cobra.Command{
		Use:   "observe DOMAIN (--inspect FILE | --docker)",
		Short: "Record what Docker Swarm really runs for an app, and show any drift",
		Long: `observe records once what Docker Swarm runs for an app. With --docker it
asks the Docker Engine of the app's server, found as meta exec finds it (the
server's docker_host in meta.yaml, else the docker context abra made for the
server, else $DOCKER_HOST, else the local socket; unix://, tcp:// with TLS,
or ssh:// as abra reaches servers; the node must be a swarm manager), and
reads every service of the app's stack: the app service's
coop-cloud.<stack>.version, .recipe, .chaos and .chaos-version labels, its
UpdateStatus and PreviousSpec, and per service the tasks running and desired
and the last task error. A stack that is gone is recorded as such. With
--inspect FILE (- for stdin) it reads docker service inspect output of the
app service alone.

It appends an observe event when what runs differs from the last
observation, and settles the app's pending deploy once Swarm has settled its
update. meta head then shows what runs next to what the log says should
run, and names any drift: running-while-undeployed, down, swarm-rollback,
updating, update-paused, unrecorded-version or degraded.

The stack is the domain with dots as underscores, cut to 45 characters,
unless --stack or STACK_NAME in the app's abra env file says otherwise.`,
		Example: `  docker service inspect matrix_example_com_app | meta observe matrix.example.com --inspect -
  meta observe matrix.example.com --docker`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeDomains,
		RunE: func(cmd *cobra.Command, args []string) error {
			domain := args[0]
			if (inspect == "") == !docker {
				return usageError{errors.New("say where to look: --inspect FILE (- for stdin) or --docker")}
			}
			if stack == "" {
				stack = e.stackName(domain)
			}
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			opts := store.AppendOptions{Offline: e.offline}
			var out *store.Appended
			if docker {
				var err error
				out, err = opsync.ObserveOnce(cmd.Context(), s, actor, abra.Dir(e.getenv), domain, stack, e.getenv, opts)
				switch {
				case errors.Is(err, swarm.ErrNoLabels):
					return usageError{fmt.Errorf("observe %s: %w", domain, err)}
				case err != nil:
					return fmt.Errorf("observe %s: %w", domain, err)
				}
			} else {
				data, err := readInput(e.stdin, inspect)
				if err != nil {
					return usageError{fmt.Errorf("--inspect: %w", err)}
				}
				services, err := swarm.ParseInspect(data)
				if err != nil {
					return usageError{fmt.Errorf("--inspect %s: %w", inspect, err)}
				}
				o, err := swarm.Observe(services, stack, "inspect")
				if err != nil {
					return usageError{fmt.Errorf("observe %s: %w", domain, err)}
				}
				if out, err = s.Observe(cmd.Context(), domain, o, actor, time.Now(), opts); err != nil {
					return err
				}
			}
			if out != nil {
				e.appended(cmd, s, out)
			}
			h, err := s.Head(domain)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, observeView{Recorded: out != nil, EventID: eventID(out), Head: h})
			}
			if out == nil {
				fmt.Fprintf(e.stdout, "unchanged since %s\n", when(*h.ObservedAt))
			} else {
				fmt.Fprintf(e.stdout, "recorded %s\n", out.Event.GetId())
			}
			return writeDrift(e.stdout, h, e.painter(e.stdout))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&inspect, "inspect", "", "read docker service inspect output from FILE (- for stdin)")
	fl.BoolVar(&docker, "docker", false, "ask the Docker Engine of the app's server (see above)")
	fl.StringVar(&stack, "stack", "", "the app's stack name, if not derived from the domain")
	fl.BoolVar(&asJSON, "json", false, `print {"recorded", "event_id", "head"} as JSON (head keys as meta head --json)`)
	return cmd
}

// observeView is `meta observe --json`.
type observeView struct {
	Recorded bool   `json:"recorded"`
	EventID  string `json:"event_id"`
	Head     any    `json:"head"`
}

func eventID(out *store.Appended) string {
	if out == nil {
		return ""
	}
	return out.Event.GetId()
}

// stackName is the app's stack as abra names it, reading STACK_NAME from
// its abra env file when there is one.
func (e *env) stackName(domain string) string {
	var data []byte
	if files, err := abra.EnvFiles(abra.Dir(e.getenv), domain); err == nil && len(files) == 1 {
		data = abra.ReadFile(files[0].Path)
	}
	return abra.StackName(domain, data)
}

// readInput reads a file, or stdin for "-".
func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}
