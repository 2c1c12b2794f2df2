package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/integrity"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Signed says who signed the commit that wrote one event, and whether the
// signature verified against the operators listed at that commit's parent.
type Signed struct {
	Commit string `json:"commit"`
	// Signature is integrity.Verified, Unsigned, UnknownKey or
	// BadSignature.
	Signature string `json:"signature"`
	// SignedBy is the operator whose key verified, for Verified.
	SignedBy string `json:"signed_by"`
	// Key is the fingerprint of the signing key, when there is one.
	Key string `json:"key"`
}

// signedMagic starts what the cache keeps of one app's signatures; it
// changes whenever the format does. The format is lines, so that a read
// of a few events (a head's) scans for them without decoding the rest:
//
//	metasigned1 <branch> <checked commit>
//	<the walk's integrity state, JSON, on one line>
//	<event id> <commit> <signature> <signed_by or -> <key or ->
//	...
const signedMagic = "metasigned1"

// signedFile is what the cache keeps of one app: who signed each of its
// events, as history up to checked says, and the state of the walk (of the
// app's directory and meta.yaml) that found it, to walk on from.
type signedFile struct {
	branch, checked string
	walk            []byte // JSON of the walk's integrity.State
	entries         []byte // the event lines
}

func parseSigned(data []byte) (signedFile, bool) {
	head, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return signedFile{}, false
	}
	f := strings.Fields(string(head))
	if len(f) != 3 || f[0] != signedMagic {
		return signedFile{}, false
	}
	walk, entries, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return signedFile{}, false
	}
	return signedFile{branch: f[1], checked: f[2], walk: walk, entries: entries}, true
}

func (f signedFile) bytes() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\n", signedMagic, f.branch, f.checked)
	b.Write(f.walk)
	b.WriteByte('\n')
	b.Write(f.entries)
	return b.Bytes()
}

// lookup reads the lines of the events ids names (all, for nil) into out.
func (f signedFile) lookup(ids map[string]bool, out map[string]Signed) {
	for line := range bytes.Lines(f.entries) {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 || ids != nil && !ids[string(line[:sp])] {
			continue
		}
		if _, seen := out[string(line[:sp])]; seen {
			continue // the first line of an id is its first written
		}
		fl := strings.Fields(string(line))
		if len(fl) != 5 {
			continue
		}
		undash := func(s string) string {
			if s == "-" {
				return ""
			}
			return s
		}
		out[fl[0]] = Signed{Commit: fl[1], Signature: fl[2], SignedBy: undash(fl[3]), Key: undash(fl[4])}
	}
}

// signedAt is how commit c is signed, judged by the meta.yaml that walk,
// at c's parent, holds in force: how each record c adds is signed.
func (s *Store) signedAt(walk *integrity.State, c gitrepo.Hash) (Signed, error) {
	cfg, err := walk.InForce(s.repo)
	if err != nil {
		return Signed{}, err
	}
	v, err := integrity.Judge(s.repo, c, cfg)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Commit: c.String(), Signature: v.Status, SignedBy: v.Operator, Key: v.Key}, nil
}

func entryLine(id string, v Signed) string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	return id + " " + v.Commit + " " + v.Signature + " " + dash(v.SignedBy) + " " + dash(v.Key) + "\n"
}

// Signatures returns who signed each of app a's events, by event id: all
// of them, or those ids names. It is derived from history: kept in the
// cache, and walked on from where it was kept (the commits that changed
// the app or meta.yaml only).
func (s *Store) Signatures(ctx context.Context, a projects.Address, ids ...string) (map[string]Signed, error) {
	out := map[string]Signed{}
	tip, err := s.repo.Head()
	if err != nil || tip.IsZero() {
		return out, err
	}
	var want map[string]bool
	if len(ids) > 0 {
		want = map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
	}
	branch, _ := s.repo.Branch()
	f, ok := parseSigned(s.cache.Signed(a))
	if ok && f.branch == branch && f.checked == tip.String() {
		f.lookup(want, out)
		return out, nil
	}
	walk := integrity.New()
	from := gitrepo.ZeroHash
	if ok && f.branch == branch && json.Unmarshal(f.walk, walk) == nil && walk.Version == integrity.Version {
		from = gitrepo.NewHash(f.checked)
	}
	have := map[string]bool{}
	var added strings.Builder
	visit := func(info gitrepo.CommitInfo, changes []gitrepo.Change) error {
		var recs []string
		for _, ch := range changes {
			if rec, err := projects.ParseRecordPath(ch.Path); err == nil && rec.Address == a && ch.From.IsZero() && !ch.To.IsZero() {
				recs = append(recs, rec.ID)
			}
		}
		if len(recs) > 0 {
			sig, err := s.signedAt(walk, info.ID)
			if err != nil {
				return err
			}
			for _, id := range recs {
				if !have[id] { // first written; a record re-added keeps its first
					have[id] = true
					added.WriteString(entryLine(id, sig))
				}
			}
		}
		return walk.Take(s.repo, info, changes)
	}
	// The common case, a few commits on from the one kept, is read
	// in-process, keeping the changes a walk of the app's paths would see.
	linear, err := s.repo.WalkLinear(from, tip, func(info gitrepo.CommitInfo, changes []gitrepo.Change) error {
		mine := changes[:0:0]
		for _, ch := range changes {
			if ch.Path == config.File || strings.HasPrefix(ch.Path, a.Dir()+"/") {
				mine = append(mine, ch)
			}
		}
		if len(mine) == 0 {
			return nil
		}
		return visit(info, mine)
	})
	if err == nil && !linear {
		if !from.IsZero() {
			if in, err := s.repo.IsAncestor(ctx, from, tip); err != nil || !in {
				from = gitrepo.ZeroHash // history rewritten: walk it afresh
			}
		}
		if from.IsZero() {
			walk = integrity.New()
			walk.Branch = branch
			f, have = signedFile{branch: branch}, map[string]bool{}
			added.Reset()
		}
		err = s.repo.WalkPaths(ctx, from, tip, []string{config.File, a.Dir()}, visit)
	}
	if err != nil {
		return nil, fmt.Errorf("signatures of %s: %w", a.App, err)
	}
	state, err := json.Marshal(walk)
	if err != nil {
		return nil, err
	}
	// Older lines first: a lookup that meets an id twice (re-added after a
	// rewrite the walk did not see) keeps the first written.
	f.checked, f.walk = tip.String(), state
	f.entries = append(f.entries, added.String()...)
	s.cache.StoreSigned(a, f.bytes())
	f.lookup(want, out)
	return out, nil
}

// SignHead is h with who signed each event it names filled in; h itself,
// which the cache may share, is left as it is.
func (s *Store) SignHead(ctx context.Context, h *fold.Head) (*fold.Head, error) {
	out := *h
	out.Heads = slices.Clone(h.Heads)
	var refs []*fold.Ref
	for _, r := range []**fold.Ref{&out.Deployed, &out.LastSuccess, &out.LastFailure, &out.EnvChanged, &out.Previous} {
		if *r != nil {
			c := **r // a copy: h's own refs stay as they are
			*r = &c
			refs = append(refs, &c)
		}
	}
	for i := range out.Heads {
		refs = append(refs, &out.Heads[i])
	}
	if len(refs) == 0 {
		return h, nil
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.EventID
	}
	signed, ok := s.derivedSigned(h)
	for _, id := range ids {
		_, has := signed[id]
		ok = ok && has
	}
	if !ok {
		var err error
		signed, err = s.Signatures(ctx, projects.Address{Project: h.Project, Env: h.Env, App: h.Domain}, ids...)
		if err != nil {
			return nil, err
		}
	}
	for _, r := range refs {
		r.SignedBy, r.Signature = signed[r.EventID].SignedBy, signed[r.EventID].Signature
	}
	return &out, nil
}

// Views are events as `meta log --json` and the API show them, with who
// signed each.
func (s *Store) Views(ctx context.Context, events []*metav1.Event) ([]record.View, error) {
	byApp := map[projects.Address]map[string]Signed{}
	views := make([]record.View, len(events))
	for i, ev := range events {
		a := record.Address(ev)
		signed, ok := byApp[a]
		if !ok {
			var err error
			if signed, err = s.Signatures(ctx, a); err != nil {
				return nil, err
			}
			byApp[a] = signed
		}
		views[i] = record.ViewOf(ev)
		views[i].SignedBy, views[i].Signature = signed[ev.GetId()].SignedBy, signed[ev.GetId()].Signature
	}
	return views, nil
}

// signAll walks history once for who signed the events of every app of
// apps whose signatures the cache does not hold at tip, instead of once per
// app (a walk of the app's paths costs about as much as a walk of all of
// history): what a read of many apps' signatures (`meta ls --json`, a
// checkpoint) does first. The cache then holds each app's lines as
// Signatures would have kept them, and their walk's state: meta.yaml's
// alone, which is all a walk of one app's paths uses its state for.
func (s *Store) signAll(ctx context.Context, apps []projects.Address) error {
	tip, err := s.repo.Head()
	if err != nil || tip.IsZero() {
		return err
	}
	branch, _ := s.repo.Branch()
	want := map[projects.Address]*strings.Builder{}
	have := map[string]bool{} // record paths seen added
	for _, a := range apps {
		if f, ok := parseSigned(s.cache.Signed(a)); ok && f.branch == branch && f.checked == tip.String() {
			continue
		}
		want[a] = &strings.Builder{}
	}
	if len(want) < 2 {
		return nil // one app's own walk costs no more
	}
	walk := integrity.New()
	walk.Branch = branch
	err = s.repo.WalkPaths(ctx, gitrepo.ZeroHash, tip, []string{config.File, projects.Root}, func(info gitrepo.CommitInfo, changes []gitrepo.Change) error {
		var cfg []gitrepo.Change
		var sig *Signed
		for _, ch := range changes {
			if ch.Path == config.File {
				cfg = append(cfg, ch)
				continue
			}
			rec, err := projects.ParseRecordPath(ch.Path)
			if err != nil || !ch.From.IsZero() || ch.To.IsZero() || have[ch.Path] {
				continue
			}
			b := want[rec.Address]
			if b == nil {
				continue
			}
			have[ch.Path] = true // first written; a record re-added keeps its first
			if sig == nil {
				got, err := s.signedAt(walk, info.ID)
				if err != nil {
					return err
				}
				sig = &got
			}
			b.WriteString(entryLine(rec.ID, *sig))
		}
		if len(cfg) == 0 {
			return nil
		}
		return walk.Take(s.repo, info, cfg)
	})
	if err != nil {
		return fmt.Errorf("signatures: %w", err)
	}
	walk.Checked = tip.String()
	state, err := json.Marshal(walk)
	if err != nil {
		return err
	}
	for a, b := range want {
		f := signedFile{branch: branch, checked: tip.String(), walk: state, entries: []byte(b.String())}
		s.cache.StoreSigned(a, f.bytes())
	}
	return nil
}

// Reports is Report of each of heads, the signatures of all of them found
// in one walk where the cache and the published derived state hold none.
func (s *Store) Reports(ctx context.Context, heads []*fold.Head) ([]HeadReport, error) {
	var unsigned []projects.Address
	for _, h := range heads {
		a := projects.Address{Project: h.Project, Env: h.Env, App: h.Domain}
		if _, ok := s.derivedSigned(h); !ok {
			unsigned = append(unsigned, a)
		}
	}
	if err := s.signAll(ctx, unsigned); err != nil {
		return nil, err
	}
	out := make([]HeadReport, 0, len(heads))
	for _, h := range heads {
		r, err := s.Report(ctx, h)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
