package store

import (
	"context"
	"errors"
	"fmt"
	"os"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
)

// Sealed env files are the one kind of file under projects/ that changes in
// place. They are committed with the env events that describe them (see
// Tx.PutEnv), and read from the work tree, where people may also edit them
// with sops: such an edit is refused by the next change (Tx.Env) and
// reported by verify until it is committed or dropped.

// envApps lists the apps that have a sealed env file at commit, as reads
// take it: an env file a quarantined commit deleted is still there, one a
// quarantined commit added without its event is not.
func (s *Store) envApps(commit gitrepo.Hash) ([]projects.Address, error) {
	apps, err := s.apps(commit)
	if err != nil {
		return nil, err
	}
	st, err := s.stateAt(commit)
	if err != nil {
		return nil, err
	}
	var out []projects.Address
	for _, a := range apps {
		if last, ok := st.Envs[projects.EnvPath(a)]; ok {
			if !gitrepo.NewHash(last).IsZero() {
				out = append(out, a)
			}
			continue
		}
		entries, err := s.repo.ReadDir(commit, a.Dir())
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.Dir && e.Name == a.App+projects.EnvExt {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// envAt is the app's sealed env file as reads take it at commit: the last
// valid version when a quarantined commit changed it (nil for none), else
// the committed one; ok says which.
func (s *Store) envAt(commit gitrepo.Hash, a projects.Address) (data []byte, quarantined bool, err error) {
	st, err := s.stateAt(commit)
	if err != nil {
		return nil, false, err
	}
	if last, ok := st.Envs[projects.EnvPath(a)]; ok {
		if h := gitrepo.NewHash(last); !h.IsZero() {
			data, err = s.repo.ReadBlob(h)
		}
		return data, true, err
	}
	return nil, false, nil
}

// EnvFile returns the app's sealed env file as it stands in this clone, and
// where the app lives; ErrNoEnv when it has none. That is the work tree's
// copy, unless a quarantined commit changed the file: then the last valid
// version.
func (s *Store) EnvFile(domain string) ([]byte, projects.Address, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, projects.Address{}, err
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, projects.Address{}, err
	}
	a, err := s.locate(tip, domain)
	if err != nil {
		return nil, projects.Address{}, err
	}
	data, quarantined, err := s.envAt(tip, a)
	if err != nil {
		return nil, a, err
	}
	if !quarantined {
		data, err = s.work.read(projects.EnvPath(a))
		if errors.Is(err, os.ErrNotExist) {
			data, err = nil, nil
		}
	}
	if err == nil && data == nil {
		return nil, a, fmt.Errorf("%w: %s has none in the log (meta env import %s FILE adds one)", ErrNoEnv, domain, domain)
	}
	return data, a, err
}

// EnvAt returns the sealed env file an event ran with: the version whose
// digest the event records, found in the history of the app's env file.
func (s *Store) EnvAt(ctx context.Context, a projects.Address, digest string) ([]byte, error) {
	if digest == "" {
		return nil, fmt.Errorf("%w: the event records no env digest", ErrNoEnv)
	}
	p := projects.EnvPath(a)
	if data, err := s.work.read(p); err == nil && sealed.Digest(data) == digest {
		return data, nil
	}
	var found []byte
	err := s.repo.Versions(ctx, p, func(data []byte) bool {
		if sealed.Digest(data) == digest {
			found = data
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no version of %s has digest %s", ErrNoEnv, p, digest)
	}
	return found, nil
}

// EnvFileRef is one app's sealed env file as this clone has it.
type EnvFileRef struct {
	Address projects.Address
	Data    []byte
}

// EnvFiles lists every app's sealed env file.
func (s *Store) EnvFiles() ([]EnvFileRef, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, err
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, err
	}
	apps, err := s.envApps(tip)
	if err != nil {
		return nil, err
	}
	out := make([]EnvFileRef, 0, len(apps))
	for _, a := range apps {
		data, quarantined, err := s.envAt(tip, a)
		if err == nil && !quarantined {
			data, err = s.work.read(projects.EnvPath(a))
		}
		if err != nil {
			return nil, err
		}
		out = append(out, EnvFileRef{Address: a, Data: data})
	}
	return out, nil
}
