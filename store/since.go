package store

import (
	"container/heap"
	"context"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
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
	from := plumbing.ZeroHash
	if since != "" {
		if !plumbing.IsHash(since) {
			return nil, "", fmt.Errorf("since: %q is not a commit id", since)
		}
		from = plumbing.NewHash(since)
	}
	if from == tip {
		return nil, tip.String(), nil
	}
	changes, err := s.repo.Diff(from, tip)
	if err != nil {
		return nil, "", fmt.Errorf("since %s: %w", since, err)
	}
	byApp := map[projects.Address][]*metav1.Event{}
	for _, ch := range changes {
		rec, err := projects.ParseRecordPath(ch.Path)
		if err != nil || !ch.From.IsZero() || ch.To.IsZero() {
			continue // not a new record: verify's business, not a follower's
		}
		data, err := s.repo.ReadBlob(ch.To)
		if err != nil {
			return nil, "", err
		}
		ev, err := record.Unmarshal(data)
		if err == nil {
			err = record.CheckPath(ev, ch.Path)
		}
		if err != nil {
			return nil, "", &CorruptError{Path: ch.Path, Commit: s.writtenIn(ch.Path), Err: err}
		}
		byApp[rec.Address] = append(byApp[rec.Address], ev)
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
