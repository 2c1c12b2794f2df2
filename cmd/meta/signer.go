package main

import (
	"errors"
	"fmt"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// chooseSigner finds the key meta signs the log's commits with, the first
// of: ssh_key in the operator's config; git's user.signingkey when
// gpg.format is ssh (as `git commit -S` would sign); the one key in
// ssh-agent that is an operator's ssh key in cfg. None found, commits are
// not signed; e.noSigner says why, for the error of a log that requires
// signatures. A key named but unusable (a missing file, an encrypted one
// ssh-agent does not hold) is a warning, never a failed read.
func (e *env) chooseSigner(root string, cfg config.Config) signing.Signer {
	if e.signerChosen {
		return e.signer
	}
	e.signerChosen = true
	oc, err := e.loadOperatorConfig()
	if err != nil {
		e.noSigner = err.Error()
		e.warn("%v; commits are not signed", err)
		return nil
	}
	named, from := oc.SSHKey, "ssh_key in "+oc.path
	if named == "" {
		if k, ok := gitrepo.SSHSigningKey(root); ok {
			named, from = e.expandHome(k), "git's user.signingkey"
		}
	}
	if named != "" {
		s, err := signing.LoadKey(named, e.agent())
		if err != nil {
			e.noSigner = fmt.Sprintf("%s: %v", from, err)
			e.warn("%s; commits are not signed", e.noSigner)
			return nil
		}
		e.signer = s
		return s
	}
	e.signer = e.agentSigner(cfg)
	return e.signer
}

// agentSigner is the signer of the one key in ssh-agent that is an
// operator's, nil when there is no such key or more than one.
func (e *env) agentSigner(cfg config.Config) signing.Signer {
	e.noSigner = "no ssh_key in " + e.operatorConfigPath() + ", no user.signingkey in git's config (with gpg.format=ssh)"
	if len(cfg.Signers()) == 0 {
		e.noSigner += ", and no operator in meta.yaml has an ssh key"
		return nil
	}
	a := e.agent()
	if a == nil {
		e.noSigner += ", and no ssh-agent ($SSH_AUTH_SOCK)"
		return nil
	}
	keys, err := a.Keys()
	if err != nil {
		e.noSigner += ", and " + err.Error()
		return nil
	}
	var mine []signing.Signer
	var names []string
	for _, k := range keys {
		if o, ok := cfg.OperatorByKey(k); ok {
			if s, err := a.Signer(k); err == nil {
				mine, names = append(mine, s), append(names, o.Name)
			}
		}
	}
	switch len(mine) {
	case 1:
		return mine[0]
	case 0:
		e.noSigner += ", and ssh-agent holds no operator's key"
	default:
		e.noSigner += fmt.Sprintf(", and ssh-agent holds the keys of %d operators (%s), so meta does not guess", len(mine), strings.Join(names, ", "))
	}
	return nil
}

// agent is the connection to the ssh-agent $SSH_AUTH_SOCK names, made
// once; nil without one.
func (e *env) agent() *signing.Agent {
	if e.sshAgent == nil && e.getenv("SSH_AUTH_SOCK") != "" {
		if a, err := signing.DialAgent(e.getenv("SSH_AUTH_SOCK")); err == nil {
			e.sshAgent = a
		}
	}
	return e.sshAgent
}

// signingHint says, for a log that requires signatures, how to give meta
// a key, and why it found none.
func (e *env) signingHint(err error) error {
	if !errors.Is(err, store.ErrNoSigner) && !errors.Is(err, store.ErrNotOperatorKey) {
		return err
	}
	hint := "set ssh_key in " + e.operatorConfigPath() + " (a private key file, or a .pub whose key ssh-agent holds), or git's user.signingkey with gpg.format=ssh, or add your operator key to ssh-agent"
	if e.noSigner != "" && errors.Is(err, store.ErrNoSigner) {
		hint = "meta found none: " + e.noSigner + "; " + hint
	}
	return fmt.Errorf("%w; %s", err, hint)
}
