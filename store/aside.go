package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/afero"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// A local commit that changes a file the remote changed too (an env file
// edited offline while another operator pushed a change of it, meta.yaml,
// a file of the operator's) cannot be replayed on top of the remote. A sync
// sets it aside instead of stopping: the commit stays in the repository
// under refs/meta/aside/<commit>, where git keeps it and the operator can
// see it, and the rest of the log goes on. An env change set aside is
// re-applied key by key (envs.Reapply, `meta env reapply`); anything set
// aside can be dropped (`meta aside drop`).

const asideRefs = "refs/meta/aside/"

// ErrNoAside: no commit is set aside under the id asked for.
var ErrNoAside = errors.New("nothing set aside")

// Aside is one local commit a sync set aside. Its JSON keys are part of
// meta's interface (`meta aside ls --json`).
type Aside struct {
	Commit  string    `json:"commit"`
	Author  string    `json:"author"`
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"`
	// Reason is the collision that set it aside; SetAside when.
	Reason   string    `json:"reason"`
	SetAside time.Time `json:"set_aside"`
	// Files are the files it changes; Events the events it records.
	Files  []string     `json:"files"`
	Events []AsideEvent `json:"events"`
}

// AsideEvent is one event of a commit set aside: for an env change, the
// names of the keys it changed (never a value).
type AsideEvent struct {
	ID      string   `json:"id"`
	Domain  string   `json:"domain"`
	Kind    string   `json:"kind"`
	Added   []string `json:"added,omitempty"`
	Changed []string `json:"changed,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// Command is the command that recorded it, to run again.
	Command []string `json:"command,omitempty"`
}

// Short is the commit's id cut for people to read.
func (a Aside) Short() string { return a.Commit[:ShortLen] }

// WayOut is the one thing to do about the commit: an env change is
// re-applied key by key; anything else is done again by hand (what it did
// is `meta aside show`'s), then dropped.
func (a Aside) WayOut() string {
	if a.EnvOnly() {
		return "`meta env reapply " + a.Short() + "` re-applies it key by key on top of the remote's (or `meta aside drop " + a.Short() + "` drops it)"
	}
	return "re-do it (`meta aside show " + a.Short() + "` says what it did), then `meta aside drop " + a.Short() + "`"
}

// EnvOnly says every event of the commit is an env change: what can be
// re-applied key by key.
func (a Aside) EnvOnly() bool {
	for _, e := range a.Events {
		if e.Kind != record.KindName(metav1.Kind_KIND_ENV) {
			return false
		}
	}
	for _, f := range a.Files {
		if _, err := projects.ParseEnvPath(f); err == nil {
			continue
		}
		if _, err := projects.ParseRecordPath(f); err != nil {
			return false
		}
	}
	return len(a.Events) > 0
}

func (s *Store) asideDir() string { return s.metaPath("aside") }

// setAside keeps commit c under refs/meta/aside/ with why it collided, and
// tells the operator. It is called by a replay, before the branch moves: a
// sync killed after it sets the same commit aside again.
func (s *Store) setAside(ctx context.Context, c gitrepo.Hash, conflict error) error {
	sig := gitrepo.Signature{Name: "meta", When: time.Now()}
	if err := s.repo.KeepRef(asideRefs+c.String(), c, sig, "meta: set aside: "+conflict.Error()); err != nil {
		return fmt.Errorf("set aside %s: %w", c.String()[:12], err)
	}
	note, _ := json.Marshal(struct {
		Reason   string    `json:"reason"`
		SetAside time.Time `json:"set_aside"`
	}{conflict.Error(), sig.When.UTC()})
	if err := os.MkdirAll(s.asideDir(), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(afero.NewOsFs(), filepath.Join(s.asideDir(), c.String()+".json"), note, 0o644); err != nil {
		return err
	}
	a, err := s.aside(ctx, c)
	if err != nil {
		return err
	}
	var keys []string
	for _, e := range a.Events {
		if k := append(append(append([]string{}, e.Added...), e.Changed...), e.Removed...); len(k) > 0 {
			keys = append(keys, e.Domain+": "+strings.Join(k, ", "))
		}
	}
	what := ""
	if len(keys) > 0 {
		what = " (keys " + strings.Join(keys, "; ") + ")"
	}
	s.notef("set aside your commit %s %q%s: %v; the rest of the log goes on: %s", a.Short(), a.Subject, what, conflict, a.WayOut())
	return nil
}

// Asides lists the commits set aside, oldest first.
func (s *Store) Asides(ctx context.Context) ([]Aside, error) {
	refs, err := s.repo.Refs(ctx, asideRefs)
	if err != nil {
		return nil, err
	}
	out := []Aside{}
	for _, c := range refs {
		a, err := s.aside(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SetAside.Before(out[j].SetAside) })
	return out, nil
}

// FindAside finds the commit set aside id names (the whole commit id or
// its start, see Prefix).
func (s *Store) FindAside(ctx context.Context, id string) (Aside, error) {
	all, err := s.Asides(ctx)
	if err != nil {
		return Aside{}, err
	}
	return Prefix[Aside]{
		What:   "commit",
		Digits: commitDigits,
		Len:    commitLen,
		ID:     func(a Aside) string { return a.Commit },
		Describe: func(a Aside) string {
			return fmt.Sprintf("set aside %s  %s  %q", a.SetAside.UTC().Format(timeLayout), a.Author, a.Subject)
		},
		Missing: func(id string) error {
			return fmt.Errorf("%w as %s (`meta aside ls` lists what is)", ErrNoAside, id)
		},
	}.Find(id, all)
}

// aside describes the commit c set aside.
func (s *Store) aside(ctx context.Context, c gitrepo.Hash) (Aside, error) {
	info, err := s.repo.Info(c)
	if err != nil {
		return Aside{}, fmt.Errorf("set aside %s: %w", c.String()[:12], err)
	}
	a := Aside{Commit: c.String(), Author: info.Author, Time: info.When, Subject: info.Subject, Files: []string{}, Events: []AsideEvent{}}
	if data, err := os.ReadFile(filepath.Join(s.asideDir(), c.String()+".json")); err == nil {
		json.Unmarshal(data, &a)
	}
	parent := gitrepo.ZeroHash
	if len(info.Parents) > 0 {
		parent = info.Parents[0]
	}
	changes, err := s.repo.Diff(parent, c)
	if err != nil {
		return Aside{}, err
	}
	for _, ch := range changes {
		a.Files = append(a.Files, ch.Path)
		if _, err := projects.ParseRecordPath(ch.Path); err != nil || !ch.From.IsZero() || ch.To.IsZero() {
			continue
		}
		data, err := s.repo.ReadBlob(ch.To)
		if err != nil {
			return Aside{}, err
		}
		ev, err := record.Unmarshal(data)
		if err != nil {
			continue
		}
		e := AsideEvent{ID: ev.GetId(), Domain: ev.GetAddress().GetApp(), Kind: record.KindName(ev.GetKind()), Command: ev.GetCommand()}
		if env := ev.GetEnv(); env != nil {
			e.Added, e.Changed, e.Removed = env.GetAdded(), env.GetChanged(), env.GetRemoved()
		}
		a.Events = append(a.Events, e)
	}
	return a, nil
}

// AsideEnv is an env file as a commit set aside left it, and as it was
// before that commit: what a re-application by key compares.
type AsideEnv struct {
	Address      projects.Address
	Before, Mine []byte // nil for none
}

// AsideEnvs returns the env files the commit set aside changes.
func (s *Store) AsideEnvs(ctx context.Context, a Aside) ([]AsideEnv, error) {
	c := gitrepo.NewHash(a.Commit)
	parent, err := s.repo.Parent(c)
	if err != nil {
		return nil, err
	}
	var out []AsideEnv
	for _, f := range a.Files {
		addr, err := projects.ParseEnvPath(f)
		if err != nil {
			continue
		}
		before, err := s.repo.FileAt(parent, f)
		if err != nil {
			return nil, err
		}
		mine, err := s.repo.FileAt(c, f)
		if err != nil {
			return nil, err
		}
		out = append(out, AsideEnv{Address: addr, Before: before, Mine: mine})
	}
	return out, nil
}

// DropAside forgets a commit set aside: git may collect it.
func (s *Store) DropAside(ctx context.Context, a Aside) error {
	if err := s.repo.DropRef(ctx, asideRefs+a.Commit); err != nil {
		return fmt.Errorf("drop %s: %w", a.Short(), err)
	}
	os.Remove(filepath.Join(s.asideDir(), a.Commit+".json"))
	return nil
}
