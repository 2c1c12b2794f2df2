package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/cache"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
)

// A clone's first read would otherwise walk the whole history (the
// integrity state) and fold every record of what it reads (the heads): at
// a million events, minutes. So a clone that has both can publish them for
// others: the derived state, one parentless commit on the remote's side
// branch DerivedBranch, which a plain `git clone` brings along. Its tree:
//
//	integrity.json                       the integrity state at commit C
//	heads/PROJECT/ENV/APP.head           each app's memoised head at C
//	heads/PROJECT/ENV/APP.signed         who signed the events it names
//
// A clone with no state of its own takes the published one up to its tip
// by walking only the commits after C, and answers a head from its memo
// when the memo was folded from exactly the app's records (the memo is
// keyed by the app's tree, see memoKey). It is never trusted over the
// records: a record added, changed or left out since has another tree, and
// that app is folded from its records; `meta verify` trusts nothing
// derived. And it is never trusted beyond who may write the log: it is
// taken only where C is in this clone's history and names the meta.yaml
// that the trust rule, replayed on meta.yaml's own history, puts in force
// at C; where any meta.yaml in force requires signatures, only when an
// operator in force at the tip signed it. (Where none does, anyone who can
// push could as well push a rewritten history, which a fresh clone
// believes: the derived state gives a pusher nothing more, except that it
// could say an operator signed an event, which is believed only from a
// derived commit an operator signed.) Deleting the
// branch costs only speed.

// DerivedBranch is the remote's side branch carrying the log's derived
// state.
const DerivedBranch = "meta-derived"

const (
	derivedState = "integrity.json"
	derivedHeads = "heads"
	// maxDerivedState bounds the integrity state meta reads from a derived
	// commit: findings of a long and troubled history fit many times over.
	maxDerivedState = 32 << 20
)

// derived is a published derived state this clone found usable.
type derived struct {
	commit gitrepo.Hash // the derived commit
	at     gitrepo.Hash // the log commit it holds for
	state  *integrity.State
	// signed: an operator in force signed it. Only then is an event it
	// says an operator signed believed so: without, it could say any
	// event was signed by anyone.
	signed bool
	// dirs are the directories of its tree as read, by path: a read of a
	// thousand apps reads each env's directory once, not once per app.
	mu   sync.Mutex
	dirs map[string]map[string]gitrepo.Hash
}

// file reads the file at p of the derived commit (p's directory read once
// per process); nil when there is none.
func (d *derived) file(repo *gitrepo.Repo, p string) []byte {
	dir, name := path.Split(p)
	d.mu.Lock()
	files, ok := d.dirs[dir]
	if !ok {
		files = map[string]gitrepo.Hash{}
		entries, _ := repo.ReadDir(d.commit, strings.TrimSuffix(dir, "/"))
		for _, e := range entries {
			if !e.Dir {
				files[e.Name] = e.ID
			}
		}
		if d.dirs == nil {
			d.dirs = map[string]map[string]gitrepo.Hash{}
		}
		d.dirs[dir] = files
	}
	d.mu.Unlock()
	id, ok := files[name]
	if !ok {
		return nil
	}
	data, err := repo.ReadBlob(id)
	if err != nil {
		return nil
	}
	return data
}

// derivedCache is what a Store found of the published derived state, once
// per process.
type derivedCache struct {
	mu      sync.Mutex
	checked bool
	found   *derived
	why     string // why none is used, when one was published
}

// ErrNoDerived: the remote has no log to derive a state of.
var ErrNoDerived = errors.New("nothing to derive")

// published is the derived state the remote published, when this clone
// may use it for reads of tip's history; nil otherwise. local is the
// clone's own state at tip, when it has one: the derived state's memos are
// then judged by it (see loadDerived). Once per process.
func (s *Store) published(ctx context.Context, tip gitrepo.Hash, local *integrity.State) *derived {
	s.derived.mu.Lock()
	defer s.derived.mu.Unlock()
	if !s.derived.checked {
		s.derived.checked = true
		s.derived.found, s.derived.why = s.loadDerived(ctx, tip, local)
	}
	return s.derived.found
}

// loadDerived reads and checks the published derived state against tip:
// nil and why not, when it may not be used. With local, the clone's own
// state at tip (walked, or taken from a derived state before), who may
// write the log is local's, and only the memos are used; without, who may
// write it is found from meta.yaml's history.
func (s *Store) loadDerived(ctx context.Context, tip gitrepo.Hash, local *integrity.State) (*derived, string) {
	commit, err := s.repo.SideTip(DerivedBranch)
	if err != nil || commit.IsZero() || tip.IsZero() {
		return nil, ""
	}
	info, err := s.repo.Info(commit)
	if err != nil {
		return nil, fmt.Sprintf("derived commit %s: %v", commit, err)
	}
	if len(info.Parents) != 0 {
		return nil, fmt.Sprintf("derived commit %s has a parent; meta writes them without", commit)
	}
	// Its size first: whoever can push can publish one, and a blob of
	// zeros costs little on the wire and its whole size in memory.
	blob, err := s.repo.BlobAt(commit, derivedState)
	if err != nil || blob.IsZero() {
		return nil, fmt.Sprintf("derived commit %s holds no %s", commit, derivedState)
	}
	if size, err := s.repo.ObjectSize(ctx, blob); err != nil || size > maxDerivedState {
		return nil, fmt.Sprintf("derived commit %s: its %s is larger than meta reads (%d bytes, %v)", commit, derivedState, size, err)
	}
	data, err := s.repo.ReadBlob(blob)
	if err != nil {
		return nil, fmt.Sprintf("derived commit %s: %v", commit, err)
	}
	st := integrity.New()
	if json.Unmarshal(data, st) != nil || st.Version != integrity.Version || !gitrepo.IsHash(st.Checked) {
		return nil, fmt.Sprintf("derived commit %s: its %s is not a state this meta reads", commit, derivedState)
	}
	if branch, _ := s.repo.Branch(); st.Branch != branch {
		return nil, fmt.Sprintf("derived commit %s holds for branch %s, not %s", commit, st.Branch, branch)
	}
	at := gitrepo.NewHash(st.Checked)
	if at != tip && !s.repo.LinearAncestor(at, tip) {
		if ok, err := s.repo.IsAncestor(ctx, at, tip); err != nil || !ok {
			return nil, fmt.Sprintf("derived commit %s holds for %s, which this clone's history does not hold", commit, at)
		}
	}
	// Who may write the log is history's, not the state's (see inForce):
	// where any meta.yaml in force requires signatures, the derived commit
	// must be signed by an operator in force at the tip (one removed since
	// may not vouch for what it published before).
	cfg, required, why := s.inForce(ctx, at, tip, st, local)
	if why != "" {
		return nil, fmt.Sprintf("derived commit %s %s", commit, why)
	}
	v, err := integrity.Judge(s.repo, commit, cfg)
	if err != nil {
		return nil, fmt.Sprintf("derived commit %s: %v", commit, err)
	}
	if required && v.Status != integrity.Verified {
		return nil, fmt.Sprintf("derived commit %s is %s, and meta.yaml requires signatures by its operators", commit, v.Status)
	}
	return &derived{commit: commit, at: at, state: st, signed: v.Status == integrity.Verified}, ""
}

// inForce is the meta.yaml in force at tip, and whether any meta.yaml in
// force up to it required signatures; why, when the derived state st at
// at names another meta.yaml in force there than history does. local is
// the clone's own state at tip, when it has one; without, the trust rule
// is replayed on meta.yaml's own history (a walk of one file, not of every
// commit) to at and on to tip, so that a meta.yaml a stranger committed
// at is quarantined by it, and an operator removed since at is no
// operator at tip.
func (s *Store) inForce(ctx context.Context, at, tip gitrepo.Hash, st, local *integrity.State) (cfg config.Config, required bool, why string) {
	if local != nil {
		cfg, err := local.InForce(s.repo)
		if err != nil {
			return cfg, false, err.Error()
		}
		return cfg, cfg.SignaturesRequired(), ""
	}
	branch, _ := s.repo.Branch()
	chain := integrity.New()
	chain.Branch = branch
	take := func(info gitrepo.CommitInfo, changes []gitrepo.Change) error {
		if err := chain.Take(s.repo, info, changes); err != nil {
			return err
		}
		cfg, err := chain.InForce(s.repo)
		required = required || err == nil && cfg.SignaturesRequired()
		return err
	}
	if err := s.repo.WalkPaths(ctx, gitrepo.ZeroHash, at, []string{config.File}, take); err != nil {
		return cfg, false, "meta.yaml's history: " + err.Error()
	}
	if chain.Trusted != st.Trusted {
		return cfg, false, "names another meta.yaml in force at " + at.String() + " than history does; the state is walked instead"
	}
	if err := s.repo.WalkPaths(ctx, at, tip, []string{config.File}, take); err != nil {
		return cfg, false, "meta.yaml's history: " + err.Error()
	}
	cfg, err := chain.InForce(s.repo)
	if err != nil {
		return cfg, false, err.Error()
	}
	return cfg, required, ""
}

// derivedHead is the head the published derived state memoised for app a
// at key. It is not copied into the cache: read from the derived commit it
// costs no more than from the cache, and a thousand files written on a
// first read would cost more than the reading.
func (s *Store) derivedHead(a projects.Address, key gitrepo.Hash) (*fold.Head, bool) {
	data, _, _ := s.derivedFile(derivedHeadPath(a))
	if data == nil {
		return nil, false
	}
	h, ok := cache.DecodeHead(data, key)
	if !ok {
		return nil, false
	}
	return h, true
}

// derivedSigned is who signed the events h names, as the published derived
// state says, when this clone's cache holds nothing of the app's
// signatures and the state's memo is of exactly the app's records at tip
// (who wrote a record first is history's, and the same for the same
// records in a history that holds the state's).
func (s *Store) derivedSigned(h *fold.Head) (map[string]Signed, bool) {
	a := projects.Address{Project: h.Project, Env: h.Env, App: h.Domain}
	if s.cache.Signed(a) != nil {
		return nil, false
	}
	data, d, tip := s.derivedFile(derivedSignedPath(a))
	if data == nil {
		return nil, false
	}
	var m derivedSignatures
	if json.Unmarshal(data, &m) != nil {
		return nil, false
	}
	key, err := s.memoKey(tip, a)
	if err != nil || m.Tree != key.String() {
		return nil, false
	}
	if !d.signed {
		// No operator vouches for it: it may say an event is unsigned
		// (what anyone could have pushed), never that an operator signed.
		for _, v := range m.Signed {
			if v.Signature == integrity.Verified {
				return nil, false
			}
		}
	}
	return m.Signed, true
}

// derivedSignatures is what the derived state keeps of who signed the
// events an app's head names, for the app's records keyed as its memo is.
type derivedSignatures struct {
	Tree   string            `json:"tree"`
	Signed map[string]Signed `json:"signed"`
}

// derivedFile is the file at p of the derived state this clone may use at
// its tip, with that state and tip; nil when there is none.
func (s *Store) derivedFile(p string) ([]byte, *derived, gitrepo.Hash) {
	tip, err := s.repo.Head()
	if err != nil {
		return nil, nil, tip
	}
	local, err := s.stateAt(tip)
	if err != nil {
		return nil, nil, tip
	}
	d := s.published(context.Background(), tip, local)
	if d == nil {
		return nil, nil, tip
	}
	return d.file(s.repo, p), d, tip
}

func derivedSignedPath(a projects.Address) string {
	return path.Join(derivedHeads, a.Project, a.Env, a.App+".signed")
}

func derivedHeadPath(a projects.Address) string {
	return path.Join(derivedHeads, a.Project, a.Env, a.App+".head")
}

// DerivedReport is what PublishDerived published.
type DerivedReport struct {
	// Commit is the derived commit, At the log commit it holds for.
	Commit string `json:"commit"`
	At     string `json:"at"`
	// Apps is how many apps' heads it memoises.
	Apps int `json:"apps"`
	// Branch is the remote's branch it was pushed to.
	Branch string `json:"branch"`
}

// PublishDerived brings the log up to date with the remote, derives the
// state at the remote's tip (the integrity state and every app's head) and
// pushes it to the remote's branch DerivedBranch, replacing what that held,
// for the first reads of clones made since. The commit is signed as this
// clone signs its commits.
func (s *Store) PublishDerived(ctx context.Context, actor *metav1.Actor, now time.Time) (DerivedReport, error) {
	fail := func(err error) (DerivedReport, error) {
		return DerivedReport{}, fmt.Errorf("publish derived state: %w", err)
	}
	at, err := s.pullForDerived(ctx)
	if err != nil {
		return fail(err)
	}
	// What follows reads the log at the commit at only, as any read does,
	// without the log's lock: at a million events it takes seconds, and
	// the clone's writes (a hub's group commits) go on meanwhile. The
	// state is published at at, whatever they add.
	if s.onDerive != nil {
		s.onDerive()
	}
	if at.IsZero() {
		return fail(fmt.Errorf("%w: the remote holds no log yet (meta sync pushes this clone's)", ErrNoDerived))
	}
	st, err := s.stateAt(at)
	if err != nil {
		return fail(err)
	}
	if tipCfg, err := s.repo.FileAt(at, config.File); err != nil || st.Config != "" || tipCfg == nil || gitrepo.BlobID(tipCfg).String() != st.Trusted {
		// No clone would take it (see loadDerived): published, it would
		// only be published again and again.
		return fail(fmt.Errorf("%w: the meta.yaml at the remote's tip is quarantined (meta quarantine ls); a checkpoint can be published once a valid one is committed", ErrNoDerived))
	}
	state, err := json.Marshal(st)
	if err != nil {
		return fail(err)
	}
	edits := []gitrepo.Edit{{Path: derivedState, Data: state}}
	apps, err := s.apps(at)
	if err != nil {
		return fail(err)
	}
	// Who signed what each head names, for `--json` reads: one walk of
	// history for every app whose signatures this clone does not hold.
	if err := s.signAll(ctx, apps); err != nil {
		return fail(err)
	}
	n := 0
	for _, a := range apps {
		key, err := s.memoKey(at, a)
		if err != nil {
			return fail(err)
		}
		h, err := s.head(at, a)
		if errors.Is(err, ErrNotFound) {
			continue // no valid record left: nothing to memoise
		}
		if err != nil {
			return fail(fmt.Errorf("%s: %w", a, err))
		}
		memo, err := cache.EncodeHead(key, h)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", a, err))
		}
		edits = append(edits, gitrepo.Edit{Path: derivedHeadPath(a), Data: memo})
		if signed, err := s.SignHead(ctx, h); err != nil {
			return fail(fmt.Errorf("%s: %w", a, err))
		} else if data, err := json.Marshal(derivedSignatures{Tree: key.String(), Signed: refsSigned(signed)}); err == nil {
			edits = append(edits, gitrepo.Edit{Path: derivedSignedPath(a), Data: data})
		}
		n++
	}
	sig := gitrepo.Signature{Name: actor.GetName(), Email: actor.GetEmail(), When: now}
	msg := fmt.Sprintf("meta derived state at %s\n\n%d apps, published by %s for the first reads of new clones; never edit it, it is rebuilt from the log.\n", at, n, actor.GetName())
	commit, err := s.repo.Build(gitrepo.ZeroHash, edits, msg, sig)
	if err != nil {
		return fail(err)
	}
	// The push moves a tracking ref that a write's fetch may move too:
	// under the lock, for the push alone.
	release, err := lock(s.gitDir)
	if err != nil {
		return fail(err)
	}
	defer release()
	if err := s.repo.PushSide(ctx, DerivedBranch, commit); err != nil {
		return fail(err)
	}
	return DerivedReport{Commit: commit.String(), At: at.String(), Apps: n, Branch: DerivedBranch}, nil
}

// pullForDerived brings the clone up to the remote, under the log's lock,
// for a derived state to publish, and returns the remote's tip.
func (s *Store) pullForDerived(ctx context.Context) (gitrepo.Hash, error) {
	release, err := s.lockForRemote(ctx)
	if err != nil {
		return gitrepo.ZeroHash, err
	}
	defer release()
	// Unsigned, or signed by no operator, no clone would use it: said
	// before any remote work.
	if err := s.checkSigner(s.Config()); err != nil {
		return gitrepo.ZeroHash, err
	}
	if err := s.pull(ctx); err != nil {
		return gitrepo.ZeroHash, err
	}
	if err := s.checkSigner(s.Config()); err != nil {
		return gitrepo.ZeroHash, err
	}
	return s.repo.RemoteTip()
}

// DerivedBehind says how many commits the remote's tip, as last fetched,
// is ahead of the derived state published at commit since, or, for "", of
// the one this clone last saw on the derived branch (checked as a read
// would take it, which walks meta.yaml's history: a caller that published
// one itself passes its commit). published is false when there is none
// that holds for this history: behind then counts all of it.
func (s *Store) DerivedBehind(ctx context.Context, since string) (behind int, published bool, err error) {
	tip, err := s.repo.RemoteTip()
	if err != nil || tip.IsZero() {
		return 0, false, err
	}
	from := gitrepo.ZeroHash
	if gitrepo.IsHash(since) {
		from = gitrepo.NewHash(since)
	} else if head, err := s.repo.Head(); err == nil {
		if local, err := s.stateAt(head); err == nil {
			if d, _ := s.loadDerived(ctx, head, local); d != nil {
				from = d.at
			}
		}
	}
	behind, err = s.repo.CountCommits(ctx, from, tip)
	return behind, !from.IsZero(), err
}

// checkDerived is what `meta verify` finds of the derived state the remote
// published, which reads may use (see above): one that no read may use
// (unsigned where signatures are required, say), and one that says other
// than the log. st is the state verify walked to tip, afresh.
func (s *Store) checkDerived(ctx context.Context, tip gitrepo.Hash, st *integrity.State) ([]Finding, error) {
	d, why := s.loadDerived(ctx, tip, st)
	where := "refs/remotes/" + gitrepo.Remote + "/" + DerivedBranch
	fix := "; `meta checkpoint` publishes a true one"
	if d == nil {
		if why == "" {
			return nil, nil
		}
		return []Finding{{Path: where, Problem: "the published derived state is not used: " + why + fix}}, nil
	}
	at := st
	if d.at != tip {
		branch, _ := s.repo.Branch()
		at = integrity.New()
		if err := at.Check(ctx, s.repo, branch, d.at, true, nil); err != nil {
			return nil, err
		}
	}
	var out []Finding
	if !sameCorrections(at, d.state) {
		out = append(out, Finding{Path: where + ":" + derivedState, Commit: d.commit.String(), Problem: "the published derived state says other than history of what is quarantined or corrected at " + d.at.String() + fix})
	}
	// The memos a read at tip would take: each must be what the app's
	// records fold to.
	apps, err := s.apps(tip)
	if err != nil {
		return nil, err
	}
	if err := s.signAll(ctx, apps); err != nil {
		return nil, err
	}
	for _, a := range apps {
		data, err := s.repo.FileAt(d.commit, derivedHeadPath(a))
		if err != nil || data == nil {
			continue
		}
		key, err := s.memoKey(tip, a)
		if err != nil {
			return nil, err
		}
		memo, ok := cache.DecodeHead(data, key)
		if !ok {
			continue // never taken at tip
		}
		events, err := s.events(tip, a)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		got, _ := json.Marshal(memo)
		want, _ := json.Marshal(fold.Fold(events))
		if string(got) != string(want) {
			out = append(out, Finding{Path: where + ":" + derivedHeadPath(a), Commit: d.commit.String(), Problem: "the published head of " + a.String() + " is not what its records fold to" + fix})
			continue
		}
		if data, err := s.repo.FileAt(d.commit, derivedSignedPath(a)); err == nil && data != nil {
			var m derivedSignatures
			if json.Unmarshal(data, &m) != nil || m.Tree != key.String() {
				continue // never taken at tip
			}
			ids := slices.Collect(maps.Keys(m.Signed))
			truth, err := s.Signatures(ctx, a, ids...)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				if t := truth[id]; t.Signature != m.Signed[id].Signature || t.SignedBy != m.Signed[id].SignedBy {
					out = append(out, Finding{Path: where + ":" + derivedSignedPath(a), Commit: d.commit.String(), Problem: "the published signature of event " + id + " of " + a.String() + " is not what history says" + fix})
					break
				}
			}
		}
	}
	return out, nil
}

// sameCorrections says whether two states correct the tree alike: the
// same records restored and left out, the same commits quarantined, the
// same meta.yaml in force.
func sameCorrections(a, b *integrity.State) bool {
	commits := func(st *integrity.State) []string {
		var out []string
		for _, f := range st.Findings {
			out = append(out, f.Commit)
		}
		return out
	}
	return maps.Equal(a.Restored, b.Restored) && maps.Equal(a.Excluded, b.Excluded) && maps.Equal(a.Purged, b.Purged) &&
		slices.Equal(commits(a), commits(b)) && a.Trusted == b.Trusted && a.Config == b.Config
}

// refsSigned is who signed each event a signed head names, by event id.
func refsSigned(h *fold.Head) map[string]Signed {
	out := map[string]Signed{}
	add := func(r *fold.Ref) {
		if r != nil && r.EventID != "" {
			out[r.EventID] = Signed{Signature: r.Signature, SignedBy: r.SignedBy}
		}
	}
	for _, r := range []*fold.Ref{h.Deployed, h.LastSuccess, h.LastFailure, h.EnvChanged, h.Previous} {
		add(r)
	}
	for i := range h.Heads {
		add(&h.Heads[i])
	}
	return out
}

// RemoteTip is the remote's tip as this clone last fetched it, "" when
// none was.
func (s *Store) RemoteTip() string {
	tip, err := s.repo.RemoteTip()
	if err != nil || tip.IsZero() {
		return ""
	}
	return tip.String()
}
