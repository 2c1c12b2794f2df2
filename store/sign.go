package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// Signing: every commit this clone makes is signed with the key its
// signer holds (see SetSigner); which commits the log believes is
// store/integrity's.

var (
	// ErrNoSigner: meta.yaml requires signed commits (signatures:
	// required), and no signing key was set; nothing is written.
	ErrNoSigner = errors.New("no key to sign commits with")
	// ErrNotOperatorKey: meta.yaml requires signed commits, and the key
	// set to sign them with is no operator's ssh key there; nothing is
	// written, since the log would not believe it.
	ErrNotOperatorKey = errors.New("the signing key is no operator's")
)

// SetSigner signs every commit the log makes from now on with s: events,
// env and operator changes, purges, repairs, and the local commits a sync
// replays on top of the remote's. nil signs none. The caller finds the
// key (the library reads no environment).
func (s *Store) SetSigner(signer signing.Signer) {
	s.signer = signer
	s.repo.SetSigner(signer)
}

// checkSigner refuses, before anything is committed, a write whose commits
// the log would not believe under cfg: when it requires signatures, one
// with no signer, or with a key that is no operator's.
func (s *Store) checkSigner(cfg config.Config) error {
	if !cfg.SignaturesRequired() {
		return nil
	}
	if s.signer == nil {
		return fmt.Errorf("%w: %s says signatures: required; nothing was written", ErrNoSigner, config.File)
	}
	if _, ok := cfg.OperatorByKey(s.signer.PublicKey()); !ok {
		return fmt.Errorf("%w: %s says signatures: required, and the key meta signs with (%s) is no operator's ssh key there; nothing was written: another operator adds it with `meta operator set-ssh NAME KEY`", ErrNotOperatorKey, config.File, signing.Fingerprint(s.signer.PublicKey()))
	}
	return nil
}

// checkSignerAt is checkSigner under meta.yaml as commit has it.
func (s *Store) checkSignerAt(commit gitrepo.Hash) error {
	data, err := s.configAt(commit)
	if err != nil || data == nil {
		return err
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return nil // this meta's rules for a meta.yaml it cannot read are refuseNewer's
	}
	return s.checkSigner(cfg)
}

// SignersFile is the allowed-signers file meta keeps for the clone, from
// meta.yaml's operators (see Signers), and names in the clone's git config
// (gpg.ssh.allowedSignersFile), so that `git verify-commit` and `git log
// --show-signature` check meta's signatures with no setup.
func (s *Store) SignersFile() string { return s.metaPath("allowed_signers") }

// Signers are the keys that may sign the log's commits as meta.yaml says
// now: each operator's ssh key, the operator's name its principal.
func (s *Store) Signers() []signing.Allowed { return s.Config().Signers() }

// keepSigners brings SignersFile up to date with meta.yaml, as read last:
// every time it is read (reloadConfig) is the one place operators change.
// A log whose operators have no ssh key, and never had, leaves the clone
// as it is.
func (s *Store) keepSigners() error {
	path := s.SignersFile()
	want := signing.AllowedSigners(s.Config().Signers())
	have, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && len(want) == 0:
		return nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read %s: %w", path, err)
	case err != nil || !bytes.Equal(have, want):
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(afero.NewOsFs(), path, want, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	// Also when the file was current: the clone may have moved.
	if err := s.repo.SetConfig(context.Background(), "gpg.ssh.allowedSignersFile", path); err != nil {
		return fmt.Errorf("point git at %s: %w", path, err)
	}
	return nil
}
