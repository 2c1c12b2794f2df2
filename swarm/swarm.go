// Package swarm reads what Docker Swarm runs for a Co-op Cloud app: the
// coop-cloud labels and update status of the app's `app` service, from
// `docker service inspect` output or the Docker Engine API.
package swarm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
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
	version, recipe, chaos, chaosVersion, ok := labels(svc.Spec.Labels, stack)
	if !ok {
		return nil, fmt.Errorf("%w: service %s has no coop-cloud.%s.* labels; is it an app abra deployed, and is %s its stack name?", ErrNoLabels, svc.Spec.Name, stack, stack)
	}
	o := &metav1.Observation{Service: svc.Spec.Name, Version: version, Recipe: recipe, Chaos: chaos, ChaosVersion: chaosVersion, Source: source}
	if st := svc.UpdateStatus; st != nil {
		o.UpdateState, o.UpdateMessage = st.State, st.Message
	}
	if p := svc.PreviousSpec; p != nil {
		pv, _, pchaos, pcv, _ := labels(p.Labels, stack)
		o.PreviousVersion = pv
		if pchaos {
			o.PreviousChaosVersion = pcv
		}
	}
	return o, nil
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
