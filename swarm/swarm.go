// Package swarm reads what Docker Swarm runs for a Co-op Cloud app: the
// coop-cloud labels and update status of the app's `app` service from
// `docker service inspect` output, or every service of its stack with its
// tasks from the Docker Engine (engine.go, client.go), and judges what
// Swarm did with an update (settle.go).
package swarm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Errors callers branch on.
var (
	// ErrInspect: the inspect output is not what Docker prints.
	ErrInspect = errors.New("not docker service inspect output")
	// ErrNoService: the app's service is not there.
	ErrNoService = errors.New("no such service")
	// ErrNoLabels: the service has no coop-cloud labels for the stack, so
	// it was not deployed by abra (or is another app's).
	ErrNoLabels = errors.New("no coop-cloud labels")
)

// Service is the part of a Swarm service meta reads; the field names are
// the Docker Engine API's.
type Service struct {
	ID           string        `json:"ID"`
	Spec         ServiceSpec   `json:"Spec"`
	PreviousSpec *ServiceSpec  `json:"PreviousSpec"`
	UpdateStatus *UpdateStatus `json:"UpdateStatus"`
}

// ServiceSpec is a service's spec: its name and labels.
type ServiceSpec struct {
	Name   string            `json:"Name"`
	Labels map[string]string `json:"Labels"`
}

// UpdateStatus is Swarm's account of the last update of a service.
type UpdateStatus struct {
	State   string `json:"State"`
	Message string `json:"Message"`
}

// ServiceName is the name Swarm gives the `app` service of a stack.
func ServiceName(stack string) string { return stack + "_app" }

// ParseInspect reads `docker service inspect` output (a JSON array) or one
// service as the Engine API returns it (a JSON object).
func ParseInspect(data []byte) ([]Service, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: the input is empty", ErrInspect)
	}
	var services []Service
	var err error
	if data[0] == '{' {
		var one Service
		err = json.Unmarshal(data, &one)
		services = []Service{one}
	} else {
		err = json.Unmarshal(data, &services)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInspect, err)
	}
	for i, s := range services {
		if s.Spec.Name == "" {
			return nil, fmt.Errorf("%w: service %d has no Spec.Name", ErrInspect, i)
		}
	}
	return services, nil
}

// Observe finds the stack's `app` service among services and reads its
// coop-cloud labels, its update status and its previous spec into what an
// observe event records; source says where services came from ("inspect"
// or "docker"). A single service is taken whatever its name, so the output
// of `docker service inspect <any name>` works too, as long as its labels
// are the stack's.
// Observations come out fitted to an event (record.Fit), so that every
// comparison with the log's last one (SameAs) compares like with like.
func Observe(services []Service, stack, source string) (*metav1.Observation, error) {
	want := ServiceName(stack)
	var svc *Service
	for i := range services {
		if services[i].Spec.Name == want {
			svc = &services[i]
		}
	}
	if svc == nil && len(services) == 1 {
		svc = &services[0]
	}
	if svc == nil {
		names := make([]string, len(services))
		for i, s := range services {
			names[i] = s.Spec.Name
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w: %s is not among %s", ErrNoService, want, strings.Join(names, ", "))
	}
	o := &metav1.Observation{Service: svc.Spec.Name, Source: source}
	var previous map[string]string
	if svc.PreviousSpec != nil {
		previous = svc.PreviousSpec.Labels
		if previous == nil {
			previous = map[string]string{}
		}
	}
	var state, message string
	if st := svc.UpdateStatus; st != nil {
		state, message = st.State, st.Message
	}
	if !observeApp(o, stack, svc.Spec.Labels, previous, state, message) {
		return nil, errNoLabels(svc.Spec.Name, stack)
	}
	record.Fit(o.ProtoReflect())
	return o, nil
}

// Observation is what an observe event records of the stack at this look:
// the app service's coop-cloud labels, update state and previous labels
// (as Observe reads them from inspect output), every service's tasks and
// last error, and missing when the Engine has none of the stack. Callers
// set settles, settled_outcome and server.
func (s *Stack) Observation(source string) *metav1.Observation {
	o := &metav1.Observation{Service: ServiceName(s.Name), Source: source, Missing: s.Missing()}
	if app := s.App(); app != nil {
		message := app.UpdateMessage
		if app.state() == "" {
			message = "" // a stale status says nothing of this spec
		}
		observeApp(o, s.Name, app.Labels, app.PreviousLabels, app.state(), message)
	}
	for _, svc := range s.Services {
		o.Services = append(o.Services, &metav1.ServiceStatus{
			Name: svc.Name, Running: uint32(svc.Running), Desired: uint32(svc.Desired),
			UpdateState: svc.state(), LastError: svc.LastError,
		})
	}
	record.Fit(o.ProtoReflect())
	return o
}

// CheckApp says whether the stack has an `app` service abra deployed:
// ErrNoService when it has none, ErrNoLabels when its labels are not the
// stack's coop-cloud ones; host names the Engine, for the message.
func (s *Stack) CheckApp(host string) error {
	app := s.App()
	if app == nil {
		return fmt.Errorf("%w: the Docker Engine at %s has no service %s; is the app deployed there?", ErrNoService, host, ServiceName(s.Name))
	}
	if _, _, _, _, ok := labels(app.Labels, s.Name); !ok {
		return errNoLabels(app.Name, s.Name)
	}
	return nil
}

// observeApp is the one rule of what an observation says of the app
// service: its coop-cloud labels, its update state and message, and the
// labels of its previous spec (nil: it has none). It says whether the
// service has any coop-cloud label of the stack.
func observeApp(o *metav1.Observation, stack string, current, previous map[string]string, state, message string) bool {
	version, recipe, chaos, chaosVersion, ok := labels(current, stack)
	o.Version, o.Recipe, o.Chaos, o.ChaosVersion = version, recipe, chaos, chaosVersion
	o.UpdateState, o.UpdateMessage = state, message
	if previous != nil {
		pv, _, pchaos, pcv, _ := labels(previous, stack)
		o.PreviousVersion = pv
		if pchaos {
			o.PreviousChaosVersion = pcv
		}
	}
	return ok
}

// RunningVersion is the version a service's labels say runs: the chaos
// version under chaos, else the version label (record.ObservedView's
// rule, which decides it for the log).
func RunningVersion(l map[string]string, stack string) string {
	version, _, chaos, chaosVersion, _ := labels(l, stack)
	return record.ObservedView{Version: version, Chaos: chaos, ChaosVersion: chaosVersion}.Running()
}

func errNoLabels(service, stack string) error {
	return fmt.Errorf("%w: service %s has no coop-cloud.%s.* labels; is it an app abra deployed, and is %s its stack name?", ErrNoLabels, service, stack, stack)
}

// labels reads the coop-cloud.<stack>.* labels.
func labels(l map[string]string, stack string) (version, recipe string, chaos bool, chaosVersion string, ok bool) {
	prefix := "coop-cloud." + stack + "."
	version, hasVersion := l[prefix+"version"]
	recipe, hasRecipe := l[prefix+"recipe"]
	chaos = l[prefix+"chaos"] == "true"
	chaosVersion = l[prefix+"chaos-version"]
	return version, recipe, chaos, chaosVersion, hasVersion || hasRecipe || chaosVersion != ""
}
