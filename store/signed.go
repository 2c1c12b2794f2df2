package store

import (
	"context"
	"encoding/json"
	"fmt"

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

// signedVersion changes whenever what signedFile holds does.
const signedVersion = 1

// signedFile is what the cache keeps of one app: who signed each of its
// events, as history up to Checked says, and the state of the walk (of the
// app's directory and meta.yaml) that found it, to walk on from.
type signedFile struct {
	Version int               `json:"version"`
	Checked string            `json:"checked"`
	Walk    *integrity.State  `json:"walk"`
	Events  map[string]Signed `json:"events"`
}

// Signatures returns who signed each of app a's events, by event id. It is
// derived from history: kept in the cache, and walked on from where it was
// kept (the commits that changed the app or meta.yaml only).
func (s *Store) Signatures(ctx context.Context, a projects.Address) (map[string]Signed, error) {
	tip, err := s.repo.Head()
	if err != nil || tip.IsZero() {
		return map[string]Signed{}, err
	}
	branch, _ := s.repo.Branch()
	var f signedFile
	if data := s.cache.Signed(a); data == nil || json.Unmarshal(data, &f) != nil || f.Version != signedVersion || f.Walk == nil || f.Walk.Version != integrity.Version || f.Walk.Branch != branch {
		f = signedFile{}
	}
	if f.Checked == tip.String() {
		return f.Events, nil
	}
	from := gitrepo.ZeroHash
	if f.Checked != "" {
		from = gitrepo.NewHash(f.Checked)
		if ok, err := s.repo.IsAncestor(ctx, from, tip); err != nil || !ok {
			from, f = gitrepo.ZeroHash, signedFile{} // history rewritten: walk it afresh
		}
	}
	if f.Walk == nil {
		f = signedFile{Version: signedVersion, Walk: integrity.New(), Events: map[string]Signed{}}
		f.Walk.Branch = branch
	}
	err = s.repo.WalkPaths(ctx, from, tip, []string{config.File, a.Dir()}, func(info gitrepo.CommitInfo, changes []gitrepo.Change) error {
		var added []string
		for _, ch := range changes {
			if rec, err := projects.ParseRecordPath(ch.Path); err == nil && rec.Address == a && ch.From.IsZero() && !ch.To.IsZero() {
				added = append(added, rec.ID)
			}
		}
		if len(added) > 0 {
			cfg, err := f.Walk.InForce(s.repo)
			if err != nil {
				return err
			}
			v, err := integrity.Judge(s.repo, info.ID, cfg)
			if err != nil {
				return err
			}
			for _, id := range added {
				if _, ok := f.Events[id]; !ok { // first written
					f.Events[id] = Signed{Commit: info.ID.String(), Signature: v.Status, SignedBy: v.Operator, Key: v.Key}
				}
			}
		}
		return f.Walk.Take(s.repo, info, changes)
	})
	if err != nil {
		return nil, fmt.Errorf("signatures of %s: %w", a.App, err)
	}
	f.Checked = tip.String()
	if data, err := json.Marshal(f); err == nil {
		s.cache.StoreSigned(a, data)
	}
	return f.Events, nil
}

// signHead is h with who signed each event it names filled in; h itself,
// which the cache may share, is left as it is.
func (s *Store) signHead(ctx context.Context, h *fold.Head) (*fold.Head, error) {
	signed, err := s.Signatures(ctx, projects.Address{Project: h.Project, Env: h.Env, App: h.Domain})
	if err != nil {
		return nil, err
	}
	out := *h
	sign := func(r *fold.Ref) *fold.Ref {
		if r == nil {
			return nil
		}
		c := *r
		c.SignedBy, c.Signature = signed[c.EventID].SignedBy, signed[c.EventID].Signature
		return &c
	}
	out.Deployed, out.LastSuccess, out.LastFailure = sign(h.Deployed), sign(h.LastSuccess), sign(h.LastFailure)
	out.EnvChanged, out.Previous = sign(h.EnvChanged), sign(h.Previous)
	if h.Heads != nil {
		out.Heads = make([]fold.Ref, len(h.Heads))
		for i := range h.Heads {
			out.Heads[i] = *sign(&h.Heads[i])
		}
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
