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
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// ErrPinLost: the remote's history no longer holds the commit this clone
// pinned (the last it saw and checked there), or holds it only beside
// another line of history merged first. Someone rewrote history past it,
// so the operator list now in force cannot be traced back by signatures to
// the one this clone trusted.
var ErrPinLost = errors.New("history no longer holds the commit this clone pinned its operators at")

// Pin is where a clone last saw and checked the remote's history, and the
// operators listed there, as ssh's known_hosts keeps the key a host first
// showed: the root every later signature is traced back to. It is not
// derived from history (that is the point) and is kept in
// .git/meta/trust.json: taken on first use, moved forward with every sync
// and push (checkPin), and replaced by `meta trust reset` only.
type Pin struct {
	// Commit is the commit the operators were taken from.
	Commit string `json:"commit"`
	// Operators are the operators with ssh keys in force at Commit.
	Operators []PinnedOperator `json:"operators"`
	// Required says meta.yaml required signatures there.
	Required bool      `json:"required"`
	Pinned   time.Time `json:"pinned"`
	// Before is, after `meta trust reset` accepted a rewritten history,
	// the remote's tip this clone had taken in before it: what the remote
	// lost since, which the next sync puts back (less what history
	// quarantined), as after any force-push.
	Before string `json:"before,omitempty"`
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

func (s *Store) pinPath() string { return s.metaPath("trust.json") }

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
	var st *integrity.State
	tip, err := s.repo.Head()
	if err == nil {
		if commit == tip {
			st, err = s.integrityAt(ctx, commit)
		} else { // the remote's tip, under this clone's own commits
			st, err = s.checkpointRemote(ctx, commit)
		}
	}
	if err != nil {
		return Pin{}, err
	}
	cfg, err := st.InForce(s.repo)
	if err != nil {
		return Pin{}, err
	}
	p := Pin{Commit: commit.String(), Required: cfg.SignaturesRequired(), Pinned: time.Now().UTC(), Operators: []PinnedOperator{}}
	for _, a := range cfg.Signers() {
		o, _ := cfg.Operator(a.Principal)
		p.Operators = append(p.Operators, PinnedOperator{Name: o.Name, SSH: o.SSH, Fingerprint: signing.Fingerprint(a.Key)})
	}
	return p, s.writePin(p)
}

func (s *Store) writePin(p Pin) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.pinPath()), 0o755); err != nil {
		return err
	}
	// Not synced: it is written on every push, and a crash that loses the
	// last write leaves the pin before it, an ancestor of it, which
	// guards the same history less far forward (or, for the first pin,
	// none: the next sync pins again).
	return atomicfile.WriteUnsynced(afero.NewOsFs(), s.pinPath(), append(data, '\n'), 0o644)
}

// seenBefore is the remote tip a sync counts lost commits from: before is
// the remote-tracking tip before the fetch, unless a trust reset said it
// was another (the fetch that was refused moved the tracking ref on).
func (s *Store) seenBefore(before gitrepo.Hash) gitrepo.Hash {
	if p, ok, err := s.Pinned(); err == nil && ok && p.Before != "" {
		return gitrepo.NewHash(p.Before)
	}
	return before
}

// lostTaken forgets Pin.Before once a sync has put back what was lost.
func (s *Store) lostTaken() error {
	p, ok, err := s.Pinned()
	if err != nil || !ok || p.Before == "" {
		return err
	}
	p.Before = ""
	return s.writePin(p)
}

// ResetPin pins the operators in force at the remote's tip as last
// fetched (the local tip for a log without a remote), replacing the pin:
// the way on once a collective has said why history was rewritten.
func (s *Store) ResetPin(ctx context.Context) (Pin, error) {
	tip, err := s.fetchedTip(ctx)
	if err != nil {
		return Pin{}, err
	}
	if tip.IsZero() {
		return Pin{}, fmt.Errorf("trust reset: the log has no commits yet")
	}
	old, had, _ := s.Pinned()
	p, err := s.pinAt(ctx, tip)
	if err != nil || !had || old.Commit == p.Commit {
		return p, err
	}
	if in, err := s.repo.IsAncestor(ctx, gitrepo.NewHash(old.Commit), tip); err == nil && !in {
		p.Before = old.Commit
		if old.Before != "" {
			p.Before = old.Before // reset twice before a sync: the first tip
		}
		err = s.writePin(p)
	}
	return p, err
}

// checkPin keeps the pin at remote, the remote's tip this clone has just
// taken in or pushed: the commit at which it last saw, and verified, the
// log's history. The pin moves forward with every sync (a ratchet), so a
// remote that later drops any of what this clone saw is refused
// (guardPin). A clone pins on first use (when it first sees the log, and
// the first time it sees it require signatures), said loudly, with the
// keys' fingerprints to compare with the collective's.
func (s *Store) checkPin(ctx context.Context, remote gitrepo.Hash) error {
	if remote.IsZero() {
		return nil
	}
	p, ok, err := s.Pinned()
	if err != nil {
		return err
	}
	if ok && p.Commit == remote.String() {
		return nil
	}
	if ok && !p.Matters() && !s.Config().SignaturesRequired() && len(s.Config().Signers()) == 0 {
		return nil // a log nobody signs: nothing to move the pin for
	}
	if ok {
		if err := s.pinHolds(ctx, p, remote); err != nil {
			return nil // guardPin's to say, before anything is taken in
		}
	}
	np, err := s.pinAt(ctx, remote)
	if err != nil {
		return err
	}
	if np.Required && (!ok || !p.Required) {
		s.notef("this log requires signatures: trusting, on first use, the operators it lists at %s: %s; compare these fingerprints with your collective's (meta trust shows them)", remote.String()[:12], pinnedList(np))
	}
	return nil
}

// guardPin refuses a remote whose history no longer holds the pinned
// commit where the pin says signatures were required: nothing of it is
// taken in, nothing replayed on it or pushed, until the operator, having
// asked why, runs `meta trust reset`. Where they were not required, it
// warns and the sync goes on (lost events come back as before).
func (s *Store) guardPin(ctx context.Context, remote gitrepo.Hash) error {
	p, ok, err := s.Pinned()
	if err != nil || !ok {
		return err
	}
	err = s.pinHolds(ctx, p, remote)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, ErrPinLost):
		return err
	case p.Required:
		return fmt.Errorf("%w; nothing was taken in", err)
	}
	s.notef("DANGER: %v", err)
	return nil
}

// PinHolds says whether the remote's history as last fetched (the
// branch's, for a log without a remote) holds the pin's commit: ErrPinLost,
// with the way out, when it does not.
func (s *Store) PinHolds(ctx context.Context, p Pin) error {
	tip, err := s.fetchedTip(ctx)
	if err != nil {
		return err
	}
	return s.pinHolds(ctx, p, tip)
}

// fetchedTip is the remote's tip as last fetched, where a pin lies; the
// branch's tip for a log without a remote (or not fetched yet).
func (s *Store) fetchedTip(ctx context.Context) (gitrepo.Hash, error) {
	if s.HasRemote(ctx) {
		if remote, err := s.repo.RemoteTip(); err == nil && !remote.IsZero() {
			return remote, nil
		}
	}
	return s.repo.Head()
}

func (s *Store) pinHolds(ctx context.Context, p Pin, tip gitrepo.Hash) error {
	pinned := gitrepo.NewHash(p.Commit)
	if pinned == tip || s.repo.LinearAncestor(pinned, tip) {
		return nil // the common case, read in-process
	}
	// The pin must be on the first-parent line of what the remote holds
	// now: a merge whose first parent is another line (a fork from below
	// the policy, or below an operator's removal) would have that line
	// judged as if it came first, by the operators of its own past.
	if on, err := s.repo.OnFirstParents(pinned, tip); err == nil && on {
		return nil
	}
	in, err := s.repo.IsAncestor(ctx, pinned, tip)
	if err == nil && in && p.Matters() {
		return fmt.Errorf("%w (%s, where it trusted %s): the remote holds it only through a merge that puts another line of history first (a fork from below it, or a `git pull` that merged instead of rebasing); this clone does not trace signatures along such a line; ask your collective who pushed it, then `meta trust reset` accepts it", ErrPinLost, p.Commit[:12], pinnedList(p))
	}
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
