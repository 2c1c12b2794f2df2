package swarm

import (
	"encoding/json"
	"errors"
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

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
