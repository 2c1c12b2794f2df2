package envs

import (
	"context"
	"fmt"
	"sort"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

// The operations behind meta's env, operator and access commands, one
// each: the command layer parses flags and prints, these decide.

// Import makes plain the app's env, replacing what was there; an app new
// to the log is placed as any first event is (app's project and env, else
// meta.yaml's defaults).
func (e *Envs) Import(ctx context.Context, app *metav1.Address, plain dotenv.File, note Note) (*Result, error) {
	note.Over = true
	return e.Modify(ctx, app, "import", note, func(dotenv.File, bool) (dotenv.File, error) { return plain, nil })
}

// KV is one key and the value to give it.
type KV struct{ Key, Value string }

// Set gives keys of the app's existing env new values, adding the keys it
// lacks, keeping the file's order and comments.
func (e *Envs) Set(ctx context.Context, domain string, sets []KV, note Note) (*Result, error) {
	return e.Modify(ctx, &metav1.Address{App: domain}, "set", note, existing(domain, func(cur dotenv.File) (dotenv.File, error) {
		for _, s := range sets {
			if err := cur.Set(s.Key, s.Value); err != nil {
				return cur, err
			}
		}
		return cur, nil
	}))
}

// Unset removes keys from the app's existing env; a key it does not have
// refuses the whole change, naming it.
func (e *Envs) Unset(ctx context.Context, domain string, keys []string, note Note) (*Result, error) {
	return e.Modify(ctx, &metav1.Address{App: domain}, "unset", note, existing(domain, func(cur dotenv.File) (dotenv.File, error) {
		var missing []string
		for _, k := range keys {
			if !cur.Unset(k) {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return cur, fmt.Errorf("not set in the env of %s: %s", domain, strings.Join(missing, ", "))
		}
		return cur, nil
	}))
}

// existing refuses, for the app's domain, to change an env the log does
// not hold yet: set and unset need one, import starts one.
func existing(domain string, change func(dotenv.File) (dotenv.File, error)) func(dotenv.File, bool) (dotenv.File, error) {
	return func(cur dotenv.File, exists bool) (dotenv.File, error) {
		if !exists {
			return cur, fmt.Errorf("%w: %s has none in the log; start it with `meta env import`", store.ErrNoEnv, domain)
		}
		return change(cur)
	}
}

// Listing is one env file of the log and who can read it, as `meta env
// ls` shows it; it decrypts nothing.
type Listing struct {
	Address projects.Address
	Digest  string
	// Readers are the operators (by name; by age key for a recipient no
	// operator has) the file is encrypted to, sorted.
	Readers []string
	// Stale says the readers differ from those meta.yaml gives access.
	Stale bool
}

// List lists the env files of the log.
func (e *Envs) List() ([]Listing, error) {
	files, err := e.Store.EnvFiles()
	if err != nil {
		return nil, err
	}
	cfg := e.Store.Config()
	out := make([]Listing, 0, len(files))
	for _, f := range files {
		l := Listing{Address: f.Address, Digest: sealed.Digest(f.Data), Readers: names(cfg, sealed.Recipients(f.Data)), Stale: cfg.Stale(f.Address.Project, f.Address.Env, f.Data)}
		out = append(out, l)
	}
	return out, nil
}

// names are the operators' names for age recipients, sorted; a recipient
// no operator has stays its key.
func names(cfg config.Config, recipients []string) []string {
	out := []string{}
	for _, r := range recipients {
		if o, ok := cfg.OperatorByAge(r); ok {
			r = o.Name
		}
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// AddOperator adds an operator to meta.yaml and re-encrypts the env files
// they may read, in one commit.
func (e *Envs) AddOperator(ctx context.Context, o config.Operator, note Note) (*store.Written, error) {
	return e.Rekey(ctx, "operator add "+o.Name, note, nil, func(c config.Config) (config.Config, error) { return c.WithOperator(o) })
}

// SetOperatorSSH sets the ssh public key of operator name in meta.yaml,
// replacing theirs: a commit of meta.yaml alone, which re-encrypts
// nothing and needs no identity.
func (e *Envs) SetOperatorSSH(ctx context.Context, name, key string) (*store.Written, error) {
	subject := "operator set-ssh " + name
	written, err := e.Store.Write(ctx, e.Actor, e.Now(), e.Options, func(tx *store.Tx) error {
		next, err := tx.Config().WithOperatorSSH(name, key)
		if err != nil {
			return err
		}
		if o, _ := tx.Config().Operator(name); o.SSH == strings.TrimSpace(key) {
			return store.ErrNoChange
		}
		tx.Message = subject
		return tx.PutConfig(next)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", subject, err)
	}
	return written, nil
}

// SetSignatures sets the log's trust policy in meta.yaml: required (from
// the tip the write starts on) or optional. Requiring it takes a signing
// key that is an operator's already (the store refuses otherwise).
func (e *Envs) SetSignatures(ctx context.Context, required bool) (*store.Written, error) {
	subject := "trust optional"
	if required {
		subject = "trust require"
	}
	written, err := e.Store.Write(ctx, e.Actor, e.Now(), e.Options, func(tx *store.Tx) error {
		if tx.Config().SignaturesRequired() == required {
			return store.ErrNoChange
		}
		since := ""
		if !tx.Tip().IsZero() {
			since = tx.Tip().String()
		}
		tx.Message = subject
		return tx.PutConfig(tx.Config().WithSignatures(required, since))
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", subject, err)
	}
	return written, nil
}

// RemoveOperator removes an operator from meta.yaml and its access rules,
// and re-encrypts without them the env files they could read.
func (e *Envs) RemoveOperator(ctx context.Context, name string, note Note) (*store.Written, error) {
	return e.Rekey(ctx, "operator rm "+name, note, nil, func(c config.Config) (config.Config, error) { return c.WithoutOperator(name) })
}

// SetAccess gives exactly operators access to scope's env files and
// re-encrypts the files that changes.
func (e *Envs) SetAccess(ctx context.Context, scope string, operators []string, note Note) (*store.Written, error) {
	return e.Rekey(ctx, "access set "+scope, note, nil, func(c config.Config) (config.Config, error) { return c.WithAccess(scope, operators) })
}

// RemoveAccess drops scope's rule and re-encrypts the files that changes.
func (e *Envs) RemoveAccess(ctx context.Context, scope string, note Note) (*store.Written, error) {
	return e.Rekey(ctx, "access rm "+scope, note, nil, func(c config.Config) (config.Config, error) { return c.WithoutAccess(scope) })
}
