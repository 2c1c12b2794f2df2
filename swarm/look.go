package swarm

import (
	"reflect"
	"sort"
	"time"

	mswarm "github.com/moby/moby/api/types/swarm"
)

// NamespaceLabel is the label `docker stack deploy` puts on every service
// (and container) of a stack, naming the stack.
const NamespaceLabel = "com.docker.stack.namespace"

// Swarm's update_config defaults, for a service whose spec has none (the
// docker CLI writes none when the compose file says nothing).
var defaultUpdate = UpdateConfig{Parallelism: 1, Monitor: 5 * time.Second, FailureAction: "pause", Order: "stop-first"}

// staleSlack is how much later than an update's CompletedAt a service may
// have been written and the UpdateStatus still be that update's: Swarm
// writes the service a few microseconds after it sets CompletedAt.
const staleSlack = time.Second

// StacksFrom is the one conversion of what the Engine answered (a service
// list with status, and the tasks of those services) into stacks, by the
// services' com.docker.stack.namespace label. Services without the label
// are left out. It reads nothing else: Look and Stacks ask, this decides.
// It is exported for swarmtest.Captured, which turns the committed
// captures of a real Engine's answers into fixtures the same way.
func StacksFrom(services []mswarm.Service, tasks []mswarm.Task, at time.Time) map[string]*Stack {
	byService := map[string][]mswarm.Task{}
	for _, t := range tasks {
		byService[t.ServiceID] = append(byService[t.ServiceID], t)
	}
	stacks := map[string]*Stack{}
	for _, svc := range services {
		name, ok := svc.Spec.Labels[NamespaceLabel]
		if !ok || name == "" {
			continue
		}
		st := stacks[name]
		if st == nil {
			st = &Stack{Name: name, At: at}
			stacks[name] = st
		}
		st.Services = append(st.Services, serviceFrom(svc, byService[svc.ID]))
	}
	for _, st := range stacks {
		sort.Slice(st.Services, func(i, j int) bool { return st.Services[i].Name < st.Services[j].Name })
	}
	return stacks
}

// serviceFrom reads one service and its tasks.
func serviceFrom(svc mswarm.Service, tasks []mswarm.Task) ServiceState {
	s := ServiceState{Name: svc.Spec.Name, Labels: svc.Spec.Labels, UpdatedAt: svc.UpdatedAt, Update: defaultUpdate}
	if p := svc.PreviousSpec; p != nil {
		s.PreviousLabels = p.Labels
		if s.PreviousLabels == nil {
			s.PreviousLabels = map[string]string{}
		}
	}
	if u := svc.UpdateStatus; u != nil {
		s.UpdateState, s.UpdateMessage = string(u.State), u.Message
		s.UpdateStale = updateStale(svc)
	}
	if c := svc.Spec.UpdateConfig; c != nil {
		s.Update = UpdateConfig{Parallelism: c.Parallelism, Delay: c.Delay, Monitor: c.Monitor,
			FailureAction: string(c.FailureAction), Order: string(c.Order)}
		if s.Update.Monitor == 0 {
			s.Update.Monitor = defaultUpdate.Monitor
		}
		if s.Update.FailureAction == "" {
			s.Update.FailureAction = defaultUpdate.FailureAction
		}
		if s.Update.Order == "" {
			s.Update.Order = defaultUpdate.Order
		}
	}
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		n := *r.Replicas
		s.Replicas = &n
	}
	desiredRunning := 0
	for _, t := range tasks {
		switch t.DesiredState {
		case mswarm.TaskStateRunning:
			desiredRunning++
			if t.Status.State == mswarm.TaskStateRunning {
				s.Running++
				if t.Status.Timestamp.After(s.RunningSince) {
					s.RunningSince = t.Status.Timestamp
				}
				if !runsSpec(t, svc.Spec.TaskTemplate) {
					s.Outdated++
				}
			}
			fallthrough
		case mswarm.TaskStateReady: // a restart waiting out its delay, a start-first task
			if early(t.Status.State) {
				s.Starting++
			}
		}
		failed := t.Status.State == mswarm.TaskStateFailed || t.Status.State == mswarm.TaskStateRejected
		if (t.Status.Err != "" || failed) && !t.Status.Timestamp.Before(s.LastErrorAt) {
			s.LastError, s.LastErrorAt = t.Status.Err, t.Status.Timestamp
			if s.LastError == "" {
				s.LastError = "task " + string(t.Status.State)
			}
		}
	}
	switch {
	case svc.ServiceStatus != nil:
		s.Desired = int(svc.ServiceStatus.DesiredTasks)
	case s.Replicas != nil:
		s.Desired = int(*s.Replicas)
	default: // a global service seen without status: the tasks Swarm keeps wanting
		s.Desired = desiredRunning
	}
	return s
}

// early says a task is on its way to running.
func early(st mswarm.TaskState) bool {
	switch st {
	case mswarm.TaskStateNew, mswarm.TaskStateAllocated, mswarm.TaskStatePending, mswarm.TaskStateAssigned,
		mswarm.TaskStateAccepted, mswarm.TaskStatePreparing, mswarm.TaskStateReady, mswarm.TaskStateStarting:
		return true
	}
	return false
}

// updateStale says svc's UpdateStatus is left from an earlier update. On
// the real Engine (20.10) this does not happen: every spec change
// (`docker stack deploy`, `docker service update --label-add`) resets
// UpdateStatus to none, and Swarm writes a new one when it starts an
// update, so a status is always the current spec's. What this guards is a
// finished update (CompletedAt set) followed by a later write of the
// service that did not reset it: Swarm itself writes the service within
// microseconds of CompletedAt, nothing later.
func updateStale(svc mswarm.Service) bool {
	u := svc.UpdateStatus
	if u == nil || u.CompletedAt == nil {
		return false
	}
	return svc.UpdatedAt.After(u.CompletedAt.Add(staleSlack))
}

// runsSpec says task t was made from the service's current task template:
// its container spec and forced-update counter are the template's. (Swarm
// copies the template into each task; the task's copy lacks only Runtime.)
func runsSpec(t mswarm.Task, tmpl mswarm.TaskSpec) bool {
	return t.Spec.ForceUpdate == tmpl.ForceUpdate && reflect.DeepEqual(t.Spec.ContainerSpec, tmpl.ContainerSpec)
}
