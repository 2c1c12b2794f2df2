package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
)

func newObserve(e *env) *cobra.Command {
	var inspect, stack string
	var docker, asJSON bool
	cmd := &cobra.Command{
		Use:   "observe DOMAIN (--inspect FILE | --docker)",
		Short: "Record what Docker Swarm really runs for an app, and show any drift",
		Long: `observe reads the app's "app" service as Docker Swarm has it: from
docker service inspect output (--inspect FILE, or - for stdin) or from the
Docker Engine at $DOCKER_HOST (--docker: unix://, tcp:// with TLS when
$DOCKER_TLS_VERIFY and $DOCKER_CERT_PATH say so, or ssh:// as abra reaches
servers; the node must be a swarm manager). It takes the service's
coop-cloud.<stack>.version, .recipe, .chaos and .chaos-version labels, its
UpdateStatus and its PreviousSpec (with --docker also every service of the
stack with its tasks running and desired and the last task error), and appends an observe event when they
differ from the last observation.

meta head then shows what runs next to what the log says should run, and
names any drift: swarm-rollback, updating, update-paused,
unrecorded-version or running-while-undeployed.

The stack is the domain with dots as underscores, cut to 45 characters,
unless --stack or STACK_NAME in the app's abra env file says otherwise.`,
		Example: `  docker service inspect matrix_example_com_app | meta observe matrix.example.com --inspect -
  DOCKER_HOST=unix:///run/docker.sock meta observe matrix.example.com --docker`,
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
			var o *metav1.Observation
			if docker {
				st, host, err := e.lookAtStack(cmd.Context(), stack)
				if err != nil {
					return err
				}
				if err := st.CheckApp(host); errors.Is(err, swarm.ErrNoService) {
					return err
				} else if err != nil {
					return usageError{fmt.Errorf("observe %s: %w", domain, err)}
				}
				o = st.Observation("docker")
			} else {
				data, err := readInput(e.stdin, inspect)
				if err != nil {
					return usageError{fmt.Errorf("--inspect: %w", err)}
				}
				services, err := swarm.ParseInspect(data)
				if err != nil {
					return usageError{fmt.Errorf("--inspect %s: %w", inspect, err)}
				}
				if o, err = swarm.Observe(services, stack, "inspect"); err != nil {
					return usageError{fmt.Errorf("observe %s: %w", domain, err)}
				}
			}
			s, actor, err := e.openAs()
			if err != nil {
				return err
			}
			out, err := s.Observe(cmd.Context(), domain, o, actor, time.Now(), store.AppendOptions{Offline: e.offline})
			if err != nil {
				return err
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
	fl.BoolVar(&docker, "docker", false, "ask the Docker Engine at $DOCKER_HOST (default unix:///var/run/docker.sock; unix://, tcp:// or ssh://)")
	fl.StringVar(&stack, "stack", "", "the app's stack name, if not derived from the domain")
	fl.BoolVar(&asJSON, "json", false, `print {"recorded", "event_id", "head"} as JSON (head keys as meta head --json)`)
	return cmd
}

// lookAtStack looks once at stack on the Docker Engine at $DOCKER_HOST
// (TLS with $DOCKER_CERT_PATH when $DOCKER_TLS_VERIFY is set, as the
// docker CLI does), and says which Engine that was.
func (e *env) lookAtStack(ctx context.Context, stack string) (*swarm.Stack, string, error) {
	h := swarm.Host{DockerHost: e.getenv("DOCKER_HOST")}
	if e.getenv("DOCKER_TLS_VERIFY") != "" {
		h.CertPath = e.getenv("DOCKER_CERT_PATH")
	}
	eng, err := swarm.Dial(ctx, h)
	if err != nil {
		return nil, "", err
	}
	defer eng.Close()
	st, err := eng.Look(ctx, stack)
	return st, eng.Host(), err
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
