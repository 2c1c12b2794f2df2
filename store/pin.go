package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// ErrPinLost: the log's history no longer holds the commit at which this
// clone first trusted its operators. Someone rewrote history past it
// (a force-push), so the operator list now in force cannot be traced back
// by signatures to the one this clone trusted.
var ErrPinLost = errors.New("history no longer holds the commit this clone pinned its operators at")

// Pin is the operator list a clone first trusted, and where, as ssh's
// known_hosts keeps the key a host first showed: the root every later
// signature is traced back to. It is not derived from history (that is the
// point) and is kept in .git/meta/trust.json, written once, when the clone
// starts or first sees the log, and again only by `meta trust reset`.
type Pin struct {
	// Commit is the commit the operators were taken from.
	Commit string `json:"commit"`
	// Operators are its operators with ssh keys, as Name and key line.
	Operators []PinnedOperator `json:"operators"`
	// Required says meta.yaml required signatures there.
	Required bool      `json:"required"`
	Pinned   time.Time `json:"pinned"`
}

// Matters says the pin holds something signatures are traced back to: an
// operator's key, or the policy. A pin of a log nobody signs raises no
// alarm when history is rewritten past it (the sync says what it lost, as
// it always does), and is renewed once operators list keys.
func (p Pin) Matters() bool { return p.Required || len(p.Operators) > 0 }

// PinnedOperator is one operator of a Pin.
type PinnedOperator struct {
	Name        string `json:"name"`
	SSH         string `json:"ssh"`
	Fingerprint string `json:"fingerprint"`
}

func (s *Store) pinPath() string { return filepath.Join(s.gitDir, "meta", "trust.json") }

// Pinned returns the clone's pin; ok is false when it has none yet.
func (s *Store) Pinned() (Pin, bool, error) {
	data, err := os.ReadFile(s.pinPath())
	if errors.Is(err, os.ErrNotExist) {
		return Pin{}, false, nil
	}
	if err != nil {
		return Pin{}, false, err
	}
	var p Pin
	if err := json.Unmarshal(data, &p); err != nil || !gitrepo.IsHash(p.Commit) {
		return Pin{}, false, fmt.Errorf("%s is damaged (`meta trust reset` pins the operators the log has now, once you have checked them)", s.pinPath())
	}
	return p, true, nil
}

// pinAt pins the operators in force at commit.
func (s *Store) pinAt(ctx context.Context, commit gitrepo.Hash) (Pin, error) {
	st, err := s.integrityAt(ctx, commit)
	if err != nil {
		return Pin{}, err
	}
	cfg, err := st.InForce(s.repo)
	if err != nil {
		return Pin{}, err
	}
	p := Pin{Commit: commit.String(), Required: cfg.SignaturesRequired(), Pinned: time.Now().UTC(), Operators: []PinnedOperator{}}
	for _, o := range cfg.Operators {
		if o.SSH == "" {
			continue
		}
		k, err := signing.ParseKey(o.SSH)
		if err != nil {
			continue
		}
		p.Operators = append(p.Operators, PinnedOperator{Name: o.Name, SSH: o.SSH, Fingerprint: signing.Fingerprint(k)})
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return Pin{}, err
	}
	if err := os.MkdirAll(filepath.Dir(s.pinPath()), 0o755); err != nil {
		return Pin{}, err
	}
	return p, atomicfile.Write(afero.NewOsFs(), s.pinPath(), append(data, '\n'), 0o644)
}

// ResetPin pins the operators in force at the tip, replacing the pin: the
// way on once a collective has said why history was rewritten.
func (s *Store) ResetPin(ctx context.Context) (Pin, error) {
	tip, err := s.repo.Head()
	if err != nil {
		return Pin{}, err
	}
	if tip.IsZero() {
		return Pin{}, fmt.Errorf("trust reset: the log has no commits yet")
	}
	return s.pinAt(ctx, tip)
}

// checkPin makes sure the clone has a pin, and that tip's history still
// holds it, saying so loudly when it does not. A clone pins on first use:
// when it first sees the log, and again the first time it sees the log
// require signatures (the operators trusted from then on are those listed
// when this clone first saw the policy), said loudly, with the keys'
// fingerprints to compare.
func (s *Store) checkPin(ctx context.Context, tip gitrepo.Hash) error {
	if tip.IsZero() {
		return nil
	}
	p, ok, err := s.Pinned()
	if err != nil {
		return err
	}
	if ok {
		if err := s.pinHolds(ctx, p, tip); err != nil {
			if !errors.Is(err, ErrPinLost) {
				return err
			}
			s.notef("DANGER: %v", err)
			return nil
		} else if p.Required {
			return nil
		}
	}
	st, err := s.integrityAt(ctx, tip)
	if err != nil {
		return err
	}
	cfg, err := st.InForce(s.repo)
	if err != nil {
		return err
	}
	if ok && !cfg.SignaturesRequired() && (p.Matters() || len(cfg.Signers()) == 0) {
		return nil // pinned, or still nothing to pin but the commit
	}
	if p, err = s.pinAt(ctx, tip); err != nil {
		return err
	}
	if p.Required {
		s.notef("this log requires signatures: trusting, on first use, the operators it lists at %s: %s; compare these fingerprints with your collective's (meta trust shows them)", tip.String()[:12], pinnedList(p))
	}
	return nil
}

// PinHolds says whether the branch's history holds the pin's commit:
// ErrPinLost, with the way out, when it does not.
func (s *Store) PinHolds(ctx context.Context, p Pin) error {
	tip, err := s.repo.Head()
	if err != nil {
		return err
	}
	return s.pinHolds(ctx, p, tip)
}

func (s *Store) pinHolds(ctx context.Context, p Pin, tip gitrepo.Hash) error {
	in, err := s.repo.IsAncestor(ctx, gitrepo.NewHash(p.Commit), tip)
	if _, gone := s.repo.Info(gitrepo.NewHash(p.Commit)); err != nil && gone != nil {
		in, err = false, nil // not even in the repository any more
	}
	if err != nil {
		return err
	}
	if in || !p.Matters() {
		return nil
	}
	return fmt.Errorf("%w (%s, where it trusted %s): someone rewrote the log's history past it, and what it says now cannot be traced back by signatures to what this clone trusted; ask your collective why, then `meta trust reset` pins the operators the log has now", ErrPinLost, p.Commit[:12], pinnedList(p))
}

func pinnedList(p Pin) string {
	if len(p.Operators) == 0 {
		return "no operator with an ssh key"
	}
	var parts []string
	for _, o := range p.Operators {
		parts = append(parts, o.Name+" "+o.Fingerprint)
	}
	return strings.Join(parts, ", ")
}
