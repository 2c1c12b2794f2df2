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
// what a hub that published up to since has yet to publish. Records that
// are not valid events are left out and named in skipped: one bad record
// must not stop every later event from reaching followers; verify reports
// it.
func (s *Store) Since(ctx context.Context, since string) (events []*metav1.Event, tip string, skipped []*CorruptError, err error) {
	if err := s.repairIfPending(); err != nil {
		return nil, "", nil, err
	}
	head, err := s.repo.Head()
	if err != nil {
		return nil, "", nil, err
	}
	from := gitrepo.ZeroHash
	if since != "" {
		if !gitrepo.IsHash(since) {
			return nil, "", nil, fmt.Errorf("since: %q is not a commit id", since)
		}
		from = gitrepo.NewHash(since)
	}
	if from == head {
		return nil, head.String(), nil, nil
	}
	changes, err := s.repo.Added(ctx, from, head, projects.Root)
	if err != nil {
		return nil, "", nil, fmt.Errorf("since %s: %w", since, err)
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
	i := 0
	err = s.repo.Blobs(ctx, blobs, func(_ gitrepo.Hash, data []byte, err error) {
		p := paths[i]
		i++
		var ev *metav1.Event
		if err == nil {
			ev, err = record.Unmarshal(data)
		}
		if err == nil {
			err = record.CheckPath(ev, p)
		}
		if err != nil {
			skipped = append(skipped, &CorruptError{Path: p, Commit: s.writtenIn(p), Err: err})
			return
		}
		addr := record.Address(ev)
		byApp[addr] = append(byApp[addr], ev)
	})
	if err != nil {
		return nil, "", nil, err
	}
	// Merge the apps' fold-ordered lists by their next event's time, so
	// each app keeps its order and apps interleave as they happened.
	lists := make(eventLists, 0, len(byApp))
	for _, evs := range byApp {
		lists = append(lists, fold.Order(evs))
	}
	heap.Init(&lists)
	for lists.Len() > 0 {
		events = append(events, lists[0][0])
		if lists[0] = lists[0][1:]; len(lists[0]) == 0 {
			heap.Pop(&lists)
		} else {
			heap.Fix(&lists, 0)
		}
	}
	return events, head.String(), skipped, nil
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
