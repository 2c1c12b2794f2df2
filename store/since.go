package store

import (
	"container/heap"
	"context"
	"fmt"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Since returns the events whose records the branch tip has and commit
// since did not (since "" means from the beginning), each app's in fold
// order and the apps interleaved by time, and the tip they were read at:
// what a hub that published up to since has yet to publish.
func (s *Store) Since(ctx context.Context, since string) ([]*metav1.Event, string, error) {
	if err := s.repairIfPending(); err != nil {
		return nil, "", err
	}
	tip, err := s.repo.Head()
	if err != nil {
		return nil, "", err
	}
	from := gitrepo.ZeroHash
	if since != "" {
		if !gitrepo.IsHash(since) {
			return nil, "", fmt.Errorf("since: %q is not a commit id", since)
		}
		from = gitrepo.NewHash(since)
	}
	if from == tip {
		return nil, tip.String(), nil
	}
	changes, err := s.repo.Added(ctx, from, tip, projects.Root)
	if err != nil {
		return nil, "", fmt.Errorf("since %s: %w", since, err)
	}
	var paths []string
	var blobs []gitrepo.Hash
	for _, ch := range changes {
		if _, err := projects.ParseRecordPath(ch.Path); err != nil || !ch.From.IsZero() || ch.To.IsZero() {
			continue // not a new record: verify's business, not a follower's
		}
		paths = append(paths, ch.Path)
		blobs = append(blobs, ch.To)
	}
	byApp := map[projects.Address][]*metav1.Event{}
	var bad error
	i := 0
	err = s.repo.Blobs(ctx, blobs, func(_ gitrepo.Hash, data []byte, err error) {
		p := paths[i]
		i++
		if bad != nil {
			return
		}
		var ev *metav1.Event
		if err == nil {
			ev, err = record.Unmarshal(data)
		}
		if err == nil {
			err = record.CheckPath(ev, p)
		}
		if err != nil {
			bad = &CorruptError{Path: p, Commit: s.writtenIn(p), Err: err}
			return
		}
		addr := record.Address(ev)
		byApp[addr] = append(byApp[addr], ev)
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, "", err
	}
	// Merge the apps' fold-ordered lists by their next event's time, so
	// each app keeps its order and apps interleave as they happened.
	lists := make(eventLists, 0, len(byApp))
	for _, evs := range byApp {
		lists = append(lists, fold.Order(evs))
	}
	heap.Init(&lists)
	var out []*metav1.Event
	for lists.Len() > 0 {
		out = append(out, lists[0][0])
		if lists[0] = lists[0][1:]; len(lists[0]) == 0 {
			heap.Pop(&lists)
		} else {
			heap.Fix(&lists, 0)
		}
	}
	return out, tip.String(), nil
}

// eventLists is a heap of non-empty event lists by their first event.
type eventLists [][]*metav1.Event

func (l eventLists) Len() int           { return len(l) }
func (l eventLists) Less(i, j int) bool { return fold.Before(l[i][0], l[j][0]) }
func (l eventLists) Swap(i, j int)      { l[i], l[j] = l[j], l[i] }
func (l *eventLists) Push(x any)        { *l = append(*l, x.([]*metav1.Event)) }
func (l *eventLists) Pop() any {
	old := *l
	x := old[len(old)-1]
	*l = old[:len(old)-1]
	return x
}
