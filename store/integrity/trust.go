package integrity

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// The trust rule: where meta.yaml requires signatures (at a commit's
// parent, or in what the commit itself makes it say), a commit must carry
// a valid SSH signature by the key of an operator listed in the meta.yaml
// in force at its parent. Everything such a commit changes is then left
// out, whatever it is: its records, its env files, its meta.yaml. So a
// stranger who can push cannot add themselves (their commit is judged by
// the list before it), and an operator removed cannot sign after removal.

// The states of a commit's signature, as Verdict.Status and the JSON
// `signature` key say them.
const (
	// Verified: a valid signature by an operator's key.
	Verified = "verified"
	// Unsigned: no signature.
	Unsigned = "unsigned"
	// UnknownKey: a valid signature by a key no operator had.
	UnknownKey = "unknown_key"
	// BadSignature: a signature that is malformed or does not verify.
	BadSignature = "bad"
)

// Problems the trust rule finds, as Problem.What begins.
const (
	NotSigned   = "not signed, and meta.yaml requires signatures"
	NotOperator = "signed by a key that was no operator's"
	BadSig      = "bad signature"
)

// Verdict is what a commit's signature says.
type Verdict struct {
	Status string
	// Operator is who signed, for Verified.
	Operator string
	// Key is the fingerprint of the key that signed, when there is one.
	Key string
	// Why says what is wrong with a BadSignature.
	Why string
}

// Judge reads commit h's signature and says whether an operator of cfg
// made it.
func Judge(repo *gitrepo.Repo, h gitrepo.Hash, cfg config.Config) (Verdict, error) {
	raw, err := repo.RawCommit(h)
	if err != nil {
		return Verdict{}, err
	}
	key, err := signing.Verify(signing.Split(raw))
	switch {
	case errors.Is(err, signing.ErrUnsigned):
		return Verdict{Status: Unsigned}, nil
	case err != nil:
		v := Verdict{Status: BadSignature, Why: err.Error()}
		if key != nil {
			v.Key = signing.Fingerprint(key)
		}
		return v, nil
	}
	v := Verdict{Key: signing.Fingerprint(key), Status: UnknownKey}
	if o, ok := cfg.OperatorByKey(key); ok {
		v.Status, v.Operator = Verified, o.Name
	}
	return v, nil
}

// trusted is the meta.yaml in force at the commit the state holds for:
// the last one a commit changed validly.
func (st *State) trusted(repo *gitrepo.Repo) (config.Config, error) {
	if st.Trusted == "" {
		return config.Config{}, nil
	}
	if st.parsed != nil && st.parsedBlob == st.Trusted {
		return *st.parsed, nil
	}
	data, err := repo.ReadBlob(gitrepo.NewHash(st.Trusted))
	if err != nil {
		return config.Config{}, fmt.Errorf("read meta.yaml %s: %w", st.Trusted, err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		// It was valid when taken in, by these rules: a broken blob.
		return config.Config{}, fmt.Errorf("meta.yaml %s: %w", st.Trusted, err)
	}
	st.parsed, st.parsedBlob = &cfg, st.Trusted
	return cfg, nil
}

// requires says whether the trust rule applies to a commit: meta.yaml
// requires signatures at its parent, or the commit makes it require them
// (adopting the policy is itself signed). It returns the operator list
// the commit is judged by: its parent's, or for a root commit its own.
func (st *State) requires(repo *gitrepo.Repo, info gitrepo.CommitInfo, changes []gitrepo.Change) (bool, config.Config, error) {
	parent, err := st.trusted(repo)
	if err != nil {
		return false, config.Config{}, err
	}
	if parent.SignaturesRequired() || st.force[info.ID] {
		return true, parent, nil
	}
	for _, ch := range changes {
		if ch.Path != config.File || ch.To.IsZero() {
			continue
		}
		data, err := repo.ReadBlob(ch.To)
		if err != nil {
			return false, config.Config{}, err
		}
		own, err := config.Parse(data)
		if err != nil {
			return false, parent, nil
		}
		if len(info.Parents) == 0 {
			// A root commit has no parent to be judged by: its own list.
			return own.SignaturesRequired(), own, nil
		}
		return own.SignaturesRequired(), parent, nil
	}
	return false, parent, nil
}

// trust applies the trust rule to one commit: it returns the problem that
// quarantines it whole, "" when it stands.
func (st *State) trust(repo *gitrepo.Repo, info gitrepo.CommitInfo, changes []gitrepo.Change) (string, error) {
	required, by, err := st.requires(repo, info, changes)
	if err != nil {
		return "", err
	}
	if !required {
		st.prePolicy = append(st.prePolicy, info.ID)
		return "", nil
	}
	v, err := Judge(repo, info.ID, by)
	if err != nil {
		return "", err
	}
	if v.Status == Verified && st.revoked[info.ID] == v.Key {
		// Signed by an operator on a line forked from below their
		// removal: not theirs to sign any more (see late).
		v.Status, v.Operator = UnknownKey, ""
	}
	st.judged, st.judgedID = v, info.ID
	switch v.Status {
	case Verified:
		st.signed = append(st.signed, signedCommit{info.ID, v.Key})
		if parent, err := st.trusted(repo); err == nil && !parent.SignaturesRequired() && len(info.Parents) > 0 {
			// The policy's adoption: the history before it is what its
			// parent holds (signatures_since says the same, when set).
			st.since = info.Parents[0]
		}
		return "", nil
	case Unsigned:
		return NotSigned, nil
	case UnknownKey:
		return NotOperator + " at its parent (" + v.Key + ")", nil
	default:
		return BadSig + ": " + strings.TrimPrefix(v.Why, signing.ErrBadSignature.Error()+": "), nil
	}
}

// distrust leaves out everything a commit changed: records it added are
// excluded, records it changed or deleted read as first written, and
// meta.yaml and env files stay as the last valid commit left them.
func (st *State) distrust(info gitrepo.CommitInfo, changes []gitrepo.Change, problem string) {
	for _, ch := range changes {
		p := ch.Path
		switch {
		case ch.From.IsZero() && ch.To.IsZero():
		case p == config.File:
			st.keepConfig(ch.From)
		case p != projects.Root && !inLog(p):
			if st.Foreign == nil {
				st.Foreign = map[string]string{}
			}
			if _, ok := st.Foreign[p]; !ok {
				before := ""
				if !ch.From.IsZero() {
					before = ch.From.String()
				}
				st.Foreign[p] = before
			}
		case isEnvPath(p):
			st.keepEnv(p, ch.From)
		case ch.From.IsZero():
			if _, known := st.Restored[p]; !known {
				st.exclude(p, ch.To.String())
			}
		default:
			if _, known := st.Restored[p]; !known && st.Excluded[p] == "" {
				st.restore(p, ch.From.String())
			}
		}
	}
	st.finding(info, Problem{What: problem})
}

// InForce is the meta.yaml in force at the commit the state holds for: the
// operator list the next commit is judged by.
func (st *State) InForce(repo *gitrepo.Repo) (config.Config, error) { return st.trusted(repo) }

// Take takes in one commit of a walk the caller made, by the same rules as
// Check, without reading records: how a walk of part of history (one
// app's, with meta.yaml) follows who may sign.
func (st *State) Take(repo *gitrepo.Repo, info gitrepo.CommitInfo, changes []gitrepo.Change) error {
	if err := st.apply(repo, info, changes, false); err != nil {
		return err
	}
	st.Checked = info.ID.String()
	return nil
}

// late finds what a walk judged by git's order and should not have: the
// commits it took as from before the policy that are not in the history
// the policy was adopted on (its since), but on a line forked from below
// it and merged in, which git's order may reach before the adoption; and
// the commits it took as signed by an operator that are not in the history
// before that operator's removal, on a line forked from below it. The
// caller walks again judging the first as under the policy (force) and the
// second as signed by no operator (revoked).
func (st *State) late(ctx context.Context, repo *gitrepo.Repo) (force []gitrepo.Hash, revoked map[gitrepo.Hash]string, err error) {
	before := func(h gitrepo.Hash) (map[gitrepo.Hash]bool, error) {
		hs, err := repo.Commits(ctx, gitrepo.ZeroHash, h)
		in := make(map[gitrepo.Hash]bool, len(hs)+1)
		for _, c := range hs {
			in[c] = true
		}
		return in, err
	}
	if !st.since.IsZero() && len(st.prePolicy) > 0 {
		cfg, err := st.trusted(repo)
		if err != nil {
			return nil, nil, err
		}
		if cfg.SignaturesRequired() {
			in, err := before(st.since)
			if err != nil {
				return nil, nil, err
			}
			for _, h := range st.prePolicy {
				if !in[h] {
					force = append(force, h)
				}
			}
		}
	}
	for _, r := range st.removals {
		in, err := before(r.before)
		if err != nil {
			return nil, nil, err
		}
		for _, sc := range st.signed {
			if sc.key == r.key && !in[sc.commit] {
				if revoked == nil {
					revoked = map[gitrepo.Hash]string{}
				}
				revoked[sc.commit] = r.key
			}
		}
	}
	return force, revoked, nil
}

// noteRemovals notes the keys a trusted change of meta.yaml (from blob
// old) took off the operator list, on a commit whose first parent is
// parent.
func (st *State) noteRemovals(repo *gitrepo.Repo, old string, parent gitrepo.Hash) {
	if old == "" || parent.IsZero() {
		return
	}
	data, err := repo.ReadBlob(gitrepo.NewHash(old))
	if err != nil {
		return
	}
	was, err := config.Parse(data)
	if err != nil {
		return
	}
	now, err := st.trusted(repo)
	if err != nil {
		return
	}
	for _, o := range was.Signers() {
		if _, ok := now.OperatorByKey(o.Key); !ok {
			st.removals = append(st.removals, removal{signing.Fingerprint(o.Key), parent})
		}
	}
}

// forget drops what one walk learnt for late.
func (st *State) forget() {
	st.prePolicy, st.since, st.force = nil, gitrepo.ZeroHash, nil
	st.signed, st.removals, st.revoked = nil, nil, nil
}
