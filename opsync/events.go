package opsync

import (
	"errors"
	"fmt"
	"slices"

	"git.coopcloud.tech/coop-cloud/meta/abra"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

var kinds = map[abra.Action]metav1.Kind{
	abra.Deploy:         metav1.Kind_KIND_DEPLOY,
	abra.Upgrade:        metav1.Kind_KIND_UPGRADE,
	abra.Rollback:       metav1.Kind_KIND_ROLLBACK,
	abra.Undeploy:       metav1.Kind_KIND_UNDEPLOY,
	abra.Move:           metav1.Kind_KIND_MOVE,
	abra.New:            metav1.Kind_KIND_NEW,
	abra.Remove:         metav1.Kind_KIND_REMOVE,
	abra.Restore:        metav1.Kind_KIND_RESTORE,
	abra.SecretGenerate: metav1.Kind_KIND_SECRET_GENERATE,
	abra.SecretInsert:   metav1.Kind_KIND_SECRET_INSERT,
	abra.SecretRemove:   metav1.Kind_KIND_SECRET_REMOVE,
	abra.VolumeRemove:   metav1.Kind_KIND_VOLUME_REMOVE,
}

// interactiveVolume names the volumes of a volume remove whose volumes
// were chosen in abra's prompt, not on the command line.
const interactiveVolume = "(chosen in abra)"

// recorded is an event to record and how to place it: by the abra server
// whose env file names the app, or, for the arrival half of a move, by
// the server it moved to.
type recorded struct {
	ev      *metav1.Event
	server  string
	arrival bool
	// abra is the outcome abra's exit code gave the event, before Swarm's
	// verdict (follow) took its place.
	abra metav1.Outcome
}

// place settles where each event goes, with meta.yaml as the write found
// it after its pull, and adds it to the write. A move between servers that
// map to different envs is recorded under both; between servers of one
// env, once. A command abra failed (or was killed in) on an app the log
// has no events of (a typo'd domain, most likely) starts no log: its
// events are left out, and unknown names the apps they were of. What abra
// did and Swarm then rolled back, paused or has not settled yet is
// recorded like any deploy.
func place(tx *store.Tx, events []recorded) (unknown []string, err error) {
	var left projects.Address
	for i, e := range events {
		if !e.arrival {
			app := e.ev.GetAddress().GetApp()
			if e.abra != metav1.Outcome_OUTCOME_SUCCEEDED {
				if known, err := tx.Knows(app); err != nil {
					return nil, err
				} else if !known {
					if !slices.Contains(unknown, app) {
						unknown = append(unknown, app)
					}
					continue
				}
			}
			a, err := tx.Place(e.ev.GetAddress(), e.server)
			if err != nil {
				return nil, err
			}
			tx.Add(a, e.ev)
			left = a
			continue
		}
		arrived, err := tx.PlaceArrival(left, e.server)
		if err != nil {
			return nil, err
		}
		if arrived == left {
			continue
		}
		// The body is the departure's too: both halves name both envs.
		m := e.ev.GetMove()
		m.FromEnv, m.ToEnv = left.Env, arrived.Env
		events[i-1].ev.Version = e.ev.GetVersion()
		tx.Add(arrived, e.ev)
	}
	return unknown, nil
}

// events are what the log records of cmd, which exited with code.
func (r *Runner) events(cmd abra.Command, argv []string, before []envFile, code int, signaled bool) ([]recorded, error) {
	outcome := metav1.Outcome_OUTCOME_SUCCEEDED
	switch {
	case signaled:
		outcome = metav1.Outcome_OUTCOME_ABORTED
	case code != 0:
		outcome = metav1.Outcome_OUTCOME_FAILED
	}
	ok := outcome == metav1.Outcome_OUTCOME_SUCCEEDED
	domain, env, err := r.envAfter(cmd, before, ok)
	if err != nil {
		return nil, err
	}
	if domain == "" {
		return nil, errors.New("no app domain on the command line, and abra wrote no new env file")
	}
	// The line as abra's: it was read, and is redacted, by abra's grammar
	// whatever the executable is called.
	line := append([]string{"abra"}, argv[1:]...)
	// The server and recipe are the env file's; without one (a new app
	// abra failed to write), what the command line said.
	server, recipe := cmd.Server, cmd.RecipeArg()
	if env != nil {
		server = env.Server
		recipe, _, _ = abra.Recipe(env.data)
	}
	base := func(kind metav1.Kind) *metav1.Event {
		return &metav1.Event{Kind: kind, Outcome: outcome, Command: line, Address: &metav1.Address{App: domain}, Recipe: recipe}
	}
	one := func(events ...*metav1.Event) []recorded {
		out := make([]recorded, len(events))
		for i, ev := range events {
			out[i] = recorded{ev: ev, server: server, abra: ev.GetOutcome()}
		}
		return out
	}
	ev := base(kinds[cmd.Action])
	if !ok {
		ev.Message = fmt.Sprintf("abra exited %d", code)
	}
	switch cmd.Action {
	case abra.Deploy, abra.Upgrade, abra.Rollback:
		r.version(ev, cmd, env, ok)
		if cmd.Action == abra.Rollback {
			ev.Body = &metav1.Event_Rollback{Rollback: &metav1.Rollback{TargetVersion: ev.GetVersion()}}
		}
		if ok && ev.GetVersion() == "" && ev.GetChaosVersion() == "" {
			r.Warn("abra did not write the deployed version into the env file, and none was on the command line; recording a note instead")
			ev.Kind, ev.Message = metav1.Kind_KIND_NOTE, fmt.Sprintf("abra app %s succeeded; version unknown", cmd.Action)
		} else {
			var data []byte
			if env != nil {
				data = env.data
			}
			ev.Stack = abra.StackName(domain, data)
		}
	case abra.New:
		r.version(ev, cmd, env, ok)
		if ok && cmd.Secrets && env != nil {
			events := []*metav1.Event{ev}
			for _, s := range abra.Secrets(env.data) {
				sev := base(metav1.Kind_KIND_SECRET_GENERATE)
				sev.Body = &metav1.Event_Secret{Secret: &metav1.Secret{Name: s.Name, Version: s.Version}}
				events = append(events, sev)
			}
			return one(events...), nil
		}
	case abra.Restore:
		if cmd.Snapshot != "" {
			ev.Body = &metav1.Event_Restore{Restore: &metav1.Restore{Snapshot: cmd.Snapshot}}
		}
	case abra.VolumeRemove:
		name := cmd.Arg(0)
		if name == "" {
			name = interactiveVolume
		}
		ev.Body = &metav1.Event_Volume{Volume: &metav1.Volume{Name: name}}
	case abra.SecretGenerate, abra.SecretInsert, abra.SecretRemove:
		events, err := r.secretEvents(cmd, env, base, ev.Message)
		return one(events...), err
	case abra.Move:
		return moveEvents(cmd, before, env, ev)
	}
	return one(ev), nil
}

// envFile is an app's env file as abra left it.
type envFile struct {
	abra.EnvFile
	data []byte
}

// readEnvFiles reads the env files abra keeps for domain (every app's for
// ""), with their content now.
func readEnvFiles(abraDir, domain string) ([]envFile, error) {
	files, err := abra.EnvFiles(abraDir, domain)
	if err != nil {
		return nil, err
	}
	out := make([]envFile, len(files))
	for i, f := range files {
		out[i] = envFile{EnvFile: f, data: abra.ReadFile(f.Path)}
	}
	return out, nil
}

// envAfter finds the app's env file after the command: where it was, where
// abra moved it, what it said before abra removed it, or (for new) the one
// abra created.
func (r *Runner) envAfter(cmd abra.Command, before []envFile, ok bool) (string, *envFile, error) {
	domain := cmd.Domain
	now, err := readEnvFiles(r.AbraDir, domain)
	if err != nil {
		return "", nil, err
	}
	var found []envFile
	switch {
	case cmd.Action == abra.New && domain == "":
		found = added(before, now)
		if len(found) == 1 {
			domain = found[0].Domain
		}
	case domain != "":
		found = now
		if len(found) == 0 {
			found = before // removed: what it said before
		}
		if cmd.Action == abra.Move && ok {
			for _, f := range found {
				if f.Server == cmd.Arg(0) {
					found = []envFile{f}
				}
			}
		}
	}
	if len(found) != 1 || found[0].data == nil {
		return domain, nil, nil
	}
	return domain, &found[0], nil
}

// added are the env files in now that were not in before.
func added(before, now []envFile) []envFile {
	had := map[string]bool{}
	for _, f := range before {
		had[f.Path] = true
	}
	var out []envFile
	for _, f := range now {
		if !had[f.Path] {
			out = append(out, f)
		}
	}
	return out
}

// version sets the version an app command deployed: the one abra wrote
// into the env file, the chaos version for --chaos; for a failed command,
// the one it tried, if known.
func (r *Runner) version(ev *metav1.Event, cmd abra.Command, env *envFile, ok bool) {
	written := ""
	if env != nil {
		_, written, _ = abra.Recipe(env.data)
	}
	if !ok || written == "" {
		// abra rewrites the line only on success: the version tried is
		// the one asked for.
		written = cmd.VersionArg()
	}
	if cmd.Chaos {
		ev.ChaosVersion = written
		return
	}
	ev.Version = written
}

// secretEvents are one event per secret a secret command named, or with
// --all, per secret the env file (or, for remove, the log) knows.
func (r *Runner) secretEvents(cmd abra.Command, env *envFile, base func(metav1.Kind) *metav1.Event, message string) ([]*metav1.Event, error) {
	var secrets []abra.Secret
	switch {
	case !cmd.All:
		s := abra.Secret{Name: cmd.Arg(0)}
		if cmd.Action != abra.SecretRemove {
			s.Version = cmd.Arg(1)
		}
		if s.Name == "" {
			return nil, fmt.Errorf("abra app %s named no secret", cmd.Action)
		}
		secrets = []abra.Secret{s}
	case cmd.Action == abra.SecretRemove:
		if h, err := r.Store.Head(cmd.Domain); err == nil {
			for _, s := range h.Secrets {
				secrets = append(secrets, abra.Secret{Name: s.Name})
			}
		}
	case env != nil:
		secrets = abra.Secrets(env.data)
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("abra app %s --all: no secrets known for %s", cmd.Action, cmd.Domain)
	}
	var out []*metav1.Event
	for _, s := range secrets {
		ev := base(kinds[cmd.Action])
		ev.Message = message
		ev.Body = &metav1.Event_Secret{Secret: &metav1.Secret{Name: s.Name, Version: s.Version}}
		out = append(out, ev)
	}
	return out, nil
}

// moveEvents record a move under the env the app left and, when the new
// server maps to another env, under the env it arrived in (see place).
func moveEvents(cmd abra.Command, before []envFile, env *envFile, ev *metav1.Event) ([]recorded, error) {
	to := cmd.Arg(0)
	if to == "" {
		return nil, errors.New("abra app move named no server to move to")
	}
	from := ""
	if len(before) == 1 {
		from = before[0].Server
	}
	m := &metav1.Move{FromServer: from, ToServer: to}
	ev.Body = &metav1.Event_Move{Move: m}
	left := recorded{ev: ev, server: from, abra: ev.GetOutcome()}
	if ev.GetOutcome() != metav1.Outcome_OUTCOME_SUCCEEDED {
		return []recorded{left}, nil
	}
	there := &metav1.Event{
		Kind: ev.Kind, Outcome: ev.Outcome, Command: ev.Command, Recipe: ev.Recipe,
		Address: &metav1.Address{App: cmd.Domain},
		Body:    &metav1.Event_Move{Move: m},
	}
	if env != nil {
		_, there.Version, _ = abra.Recipe(env.data)
	}
	return []recorded{left, {ev: there, server: to, arrival: true, abra: there.GetOutcome()}}, nil
}
