package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"google.golang.org/protobuf/proto"
)

const stack = "matrix_example_com"

func TestObserveFixtures(t *testing.T) {
	tests := []struct {
		file string
		want *metav1.Observation
		err  error
	}{
		{"healthy.json", &metav1.Observation{Source: "inspect", Service: stack + "_app", Version: "4.1.0+v1.94.0", Recipe: "matrix-synapse", ChaosVersion: "false", UpdateState: "completed", UpdateMessage: "update completed", PreviousVersion: "4.0.0+v1.93.0"}, nil},
		{"chaos.json", &metav1.Observation{Source: "inspect", Service: stack + "_app", Version: "4.1.0+v1.94.0", Recipe: "matrix-synapse", Chaos: true, ChaosVersion: "eb96de94+U", UpdateState: "completed", UpdateMessage: "update completed", PreviousVersion: "4.1.0+v1.94.0"}, nil},
		{"updating.json", &metav1.Observation{Source: "inspect", Service: stack + "_app", Version: "4.1.0+v1.94.0", Recipe: "matrix-synapse", ChaosVersion: "false", UpdateState: "updating", UpdateMessage: "update in progress", PreviousVersion: "4.0.0+v1.93.0"}, nil},
		{"paused.json", &metav1.Observation{Source: "inspect", Service: stack + "_app", Version: "4.1.0+v1.94.0", Recipe: "matrix-synapse", ChaosVersion: "false", UpdateState: "paused", UpdateMessage: "update paused due to failure or early termination of task q8w1e2r3t4", PreviousVersion: "4.0.0+v1.93.0"}, nil},
		{"rollback_completed.json", &metav1.Observation{Source: "inspect", Service: stack + "_app", Version: "4.0.0+v1.93.0", Recipe: "matrix-synapse", ChaosVersion: "false", UpdateState: "rollback_completed", UpdateMessage: "rollback completed"}, nil},
		{"no_labels.json", nil, ErrNoLabels},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			services, err := ParseInspect(data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Observe(services, stack, "inspect")
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestObserveRefusesOtherInput(t *testing.T) {
	tests := []struct {
		name, input string
		err         error
	}{
		{"empty", "", ErrInspect},
		{"not json", "Error: No such service: x", ErrInspect},
		{"no name", `[{"ID":"x","Spec":{}}]`, ErrInspect},
		{"another stack's services", `[{"Spec":{"Name":"a_app"}},{"Spec":{"Name":"b_app"}}]`, ErrNoService},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			services, err := ParseInspect([]byte(tt.input))
			if err == nil {
				_, err = Observe(services, stack, "inspect")
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

// The Engine API is served over a unix socket, as dockerd serves it, from
// the same fixture a real daemon's `docker service inspect` printed.
func TestInspectFromEngine(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "chaos.json"))
	if err != nil {
		t.Fatal(err)
	}
	services, _ := ParseInspect(data)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		if r.URL.Path != "/services/"+stack+"_app" {
			http.Error(w, `{"message":"service x not found"}`, http.StatusNotFound)
			return
		}
		// The API answers one object, not inspect's array.
		w.Header().Set("Content-Type", "application/json")
		w.Write(mustJSON(t, services[0]))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	got, err := Inspect(context.Background(), "unix://"+sock, stack+"_app")
	if err != nil {
		t.Fatal(err)
	}
	o, err := Observe(got, stack, "docker")
	if err != nil || o.GetChaosVersion() != "eb96de94+U" || !o.GetChaos() {
		t.Fatalf("Observe = %+v, %v", o, err)
	}
	if _, err := Inspect(context.Background(), "unix://"+sock, "other_app"); !errors.Is(err, ErrNoService) {
		t.Fatalf("missing service: err = %v, want ErrNoService", err)
	}
	if _, err := Inspect(context.Background(), "ssh://root@example.com", stack+"_app"); err == nil {
		t.Fatal("ssh:// DOCKER_HOST: no error")
	}
	if len(asked) != 2 {
		t.Fatalf("engine asked %v", asked)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
