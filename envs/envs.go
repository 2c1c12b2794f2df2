// Package envs carries out meta's env, operator and access commands: it
// decrypts an app's sealed env file, applies the change, encrypts the result
// to the operators meta.yaml gives access, and commits file and env event
// together through the store's one commit path. It sits above both the log
// (store) and the encryption (sealed), which know nothing of each other.
package envs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

// Envs is one operator's view of the log's env files.
type Envs struct {
	Store  *store.Store
	Helper sealed.Helper
	// Identity finds the operator's age identity; it is called only when
	// something must be decrypted.
	Identity func() (sealed.Identity, error)
	Actor    *metav1.Actor
	Now      func() time.Time
	Options  store.AppendOptions
	// Warn tells the operator something that does not stop the command,
	// such as an edit opened again; nil says nothing.
	Warn func(format string, args ...any)
}

// Note is what the operator says about a change, for its event.
type Note struct {
	Message string
	Command []string
	// Expect, when set, is the digest the env file must still have: the
	// optimistic check of an edit made on a copy.
	Expect string
	// Over replaces the whole file on purpose, an uncommitted hand edit
	// too (kept aside, see store.Tx.EnvOver): what an import does.
	Over bool
}

// Result is a committed env change.
type Result struct {
	*store.Written
	Address projects.Address
	Changes dotenv.Changes
}

// Open decrypts the app's env file as this clone has it, and returns its
// digest and where the app lives.
func (e *Envs) Open(ctx context.Context, domain string) (dotenv.File, string, projects.Address, error) {
	data, addr, err := e.Store.EnvFile(domain)
	if err != nil {
		return dotenv.File{}, "", addr, err
	}
	f, err := e.open(ctx, e.Store.Config(), addr, data)
	return f, sealed.Digest(data), addr, err
}

// open decrypts one sealed file, naming the operators it is encrypted to
// when the identity is not one of them.
func (e *Envs) open(ctx context.Context, cfg config.Config, addr projects.Address, data []byte) (dotenv.File, error) {
	files, err := e.openAll(ctx, cfg, []projects.Address{addr}, [][]byte{data})
	if err != nil {
		return dotenv.File{}, err
	}
	return files[0], nil
}

func (e *Envs) openAll(ctx context.Context, cfg config.Config, addrs []projects.Address, data [][]byte) ([]dotenv.File, error) {
	id, err := e.Identity()
	if err != nil {
		return nil, err
	}
	files, errs, err := e.Helper.Open(ctx, id, data...)
	if err != nil {
		return nil, err
	}
	var all []error
	for i, err := range errs {
		if err != nil {
			all = append(all, fmt.Errorf("%s: %w", projects.EnvPath(addrs[i]), explain(cfg, err)))
		}
	}
	return files, errors.Join(all...)
}

// explain adds operator names and a way forward to a decryption error.
func explain(cfg config.Config, err error) error {
	var nr *sealed.NotRecipientError
	if !errors.As(err, &nr) {
		return err
	}
	to := names(cfg, nr.Recipients)
	yours := strings.Join(nr.Yours, ", ")
	hint := fmt.Sprintf("ask one of them to run `meta operator add NAME --age %s`", yours)
	for _, y := range nr.Yours {
		if o, ok := cfg.OperatorByAge(y); ok {
			hint = fmt.Sprintf("you are operator %s, but not among its readers: ask one of them to give you access (meta access set) or to run `meta env rekey` if meta.yaml already does", o.Name)
		}
	}
	return fmt.Errorf("%w: it is encrypted to %s; your identity (%s) is %s; %s", sealed.ErrNotRecipient, strings.Join(to, ", "), nr.Source, yours, hint)
}

// recipients are the age keys and operator names an env file at a is
// sealed to under cfg.
func recipients(cfg config.Config, a projects.Address) ([]string, []string, error) {
	readers, _ := cfg.Readers(a.Project, a.Env)
	if len(readers) == 0 {
		return nil, nil, fmt.Errorf("%w for %s/%s: add yourself with `meta operator add NAME --age $(age-keygen -y KEYFILE)`", sealed.ErrNoOperators, a.Project, a.Env)
	}
	var keys, names []string
	for _, o := range readers {
		keys = append(keys, o.Age)
		names = append(names, o.Name)
	}
	sort.Strings(names)
	return keys, names, nil
}

// Modify decrypts the app's current env file (none for an app without
// one), lets change edit it, and commits the result with an env event.
// Nothing is written when change fails or changes nothing.
func (e *Envs) Modify(ctx context.Context, app *metav1.Address, reason string, note Note, change func(cur dotenv.File, exists bool) (dotenv.File, error)) (*Result, error) {
	res := &Result{}
	changed, err := e.Store.Write(ctx, e.Actor, e.Now(), e.Options, func(tx *store.Tx) error {
		addr, err := tx.Place(app, "")
		if err != nil {
			return err
		}
		res.Address = addr
		env := tx.Env
		if note.Over {
			env = tx.EnvOver
		}
		data, err := env(addr)
		if err != nil {
			return err
		}
		if note.Expect != "" && sealed.Digest(data) != note.Expect {
			return fmt.Errorf("%w: the env of %s changed since you read it (it was %s, it is %s now); nothing was written: run the command again", store.ErrConflict, addr.App, sealed.ShortDigest(note.Expect), sealed.ShortDigest(sealed.Digest(data)))
		}
		var cur dotenv.File
		if data != nil {
			if cur, err = e.open(ctx, tx.Config(), addr, data); err != nil {
				return err
			}
		}
		next, err := change(cur.Clone(), data != nil)
		if err != nil {
			return err
		}
		res.Changes = dotenv.Diff(cur, next)
		if data != nil && string(next.Bytes()) == string(cur.Bytes()) {
			return store.ErrNoChange
		}
		keys, names, err := recipients(tx.Config(), addr)
		if err != nil {
			return err
		}
		out, err := e.Helper.Seal(ctx, []dotenv.File{next}, [][]string{keys})
		if err != nil {
			return err
		}
		tx.PutEnv(addr, out[0], envEvent(reason, res.Changes, names, note))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("env %s %s: %w", reason, app.GetApp(), err)
	}
	res.Written = changed
	return res, nil
}

func envEvent(reason string, c dotenv.Changes, names []string, note Note) *metav1.Event {
	return &metav1.Event{
		Message: note.Message,
		Command: note.Command,
		Body: &metav1.Event_Env{Env: &metav1.EnvChange{
			Added:      c.Added,
			Changed:    c.Changed,
			Removed:    c.Removed,
			Recipients: names,
			Reason:     reason,
		}},
	}
}

// Rekey applies reconfigure to meta.yaml (nil leaves it) and re-encrypts,
// with fresh data keys, every env file whose recipients then differ from
// meta.yaml's, plus those of the apps in force: all in one commit, one env
// event per file. Files the operator cannot decrypt make it refuse,
// naming them.
func (e *Envs) Rekey(ctx context.Context, subject string, note Note, force []string, reconfigure func(config.Config) (config.Config, error)) (*store.Written, error) {
	changed, err := e.Store.Write(ctx, e.Actor, e.Now(), e.Options, func(tx *store.Tx) error {
		cfg := tx.Config()
		tx.Message = subject
		if note.Message == "" {
			note.Message = subject
		}
		if reconfigure != nil {
			next, err := reconfigure(cfg)
			if err != nil {
				return err
			}
			if err := tx.PutConfig(next); err != nil {
				return err
			}
			cfg = next
		}
		apps, err := tx.Envs()
		if err != nil {
			return err
		}
		forced := map[string]bool{}
		for _, d := range force {
			forced[d] = true
		}
		var addrs []projects.Address
		var data [][]byte
		var keys, names [][]string
		for _, a := range apps {
			d, err := tx.Env(a)
			if err != nil {
				return err
			}
			if !forced[a.App] && !cfg.Stale(a.Project, a.Env, d) {
				continue
			}
			k, n, err := recipients(cfg, a)
			if err != nil {
				return err
			}
			delete(forced, a.App)
			addrs, data, keys, names = append(addrs, a), append(data, d), append(keys, k), append(names, n)
		}
		for d := range forced {
			return fmt.Errorf("%w: %s has none in the log", store.ErrNoEnv, d)
		}
		if len(addrs) == 0 {
			if reconfigure == nil {
				return store.ErrNoChange
			}
			return nil
		}
		files, err := e.openAll(ctx, tx.Config(), addrs, data)
		if err != nil {
			return fmt.Errorf("cannot re-encrypt every env file, so nothing was changed: %w", err)
		}
		sealedFiles, err := e.Helper.Seal(ctx, files, keys)
		if err != nil {
			return err
		}
		for i, a := range addrs {
			tx.PutEnv(a, sealedFiles[i], envEvent("rekey", dotenv.Changes{}, names[i], note))
		}
		tx.Message = fmt.Sprintf("%s: re-encrypt %d env file(s)", subject, len(addrs))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", subject, err)
	}
	return changed, nil
}

// Diff names the keys that differ between the env files two events ran
// with (an env event's new file, or the file a deploy recorded).
func (e *Envs) Diff(ctx context.Context, domain, from, to string) (dotenv.Changes, error) {
	wrap := func(err error) error { return fmt.Errorf("env diff %s: %w", domain, err) }
	evs, err := e.Store.Log(domain, 0)
	if err != nil {
		return dotenv.Changes{}, wrap(err)
	}
	digest := func(id string) (string, projects.Address, error) {
		ev, err := store.EventIDs.Find(id, evs)
		if err != nil {
			return "", projects.Address{}, err
		}
		a := ev.GetAddress()
		if ev.GetEnvDigest() == "" {
			return "", projects.Address{}, fmt.Errorf("%w: event %s records none", store.ErrNoEnv, ev.GetId())
		}
		return ev.GetEnvDigest(), projects.Address{Project: a.GetProject(), Env: a.GetEnv(), App: a.GetApp()}, nil
	}
	var files [2][]byte
	var addr projects.Address
	for i, id := range []string{from, to} {
		d, a, err := digest(id)
		if err != nil {
			return dotenv.Changes{}, wrap(err)
		}
		addr = a
		if files[i], err = e.Store.EnvAt(ctx, a, d); err != nil {
			return dotenv.Changes{}, wrap(err)
		}
	}
	opened, err := e.openAll(ctx, e.Store.Config(), []projects.Address{addr, addr}, files[:])
	if err != nil {
		return dotenv.Changes{}, wrap(err)
	}
	return dotenv.Diff(opened[0], opened[1]), nil
}
